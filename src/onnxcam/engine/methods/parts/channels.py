"""Which channels a method spends passes on: constant ones cost none, `max_channels` keeps the
channels of largest spatial std, channels with equal normalised maps share one pass; and the
softmax over channels that turns their scores into weights."""

from __future__ import annotations

import numpy as np

from onnxcam.kernels import map_spread

#: Score-CAM's mask normalisation epsilon (algorithms §1.3), also used by the served explainer.
MASK_EPS = 1e-8


def constant_channels(activations: np.ndarray) -> np.ndarray:
    """(N, K) True where a channel's map is constant (its mask would be all zeros)."""
    return map_spread(activations)[0]


def top_std_channels(std: np.ndarray, max_channels: int | None) -> np.ndarray:
    """(N, K) True for the max_channels channels of largest spatial std (N, K) per image (ties:
    low k)."""
    n, k = std.shape
    if max_channels is None or max_channels >= k:
        return np.ones((n, k), bool)
    # the max_channels-th largest std of each row, then the ties at it from the lowest k: what a
    # stable sort would keep, in linear time
    kth = np.partition(std, k - max_channels, axis=1)[:, k - max_channels, None]
    above = std > kth
    ties = std == kth
    room = max_channels - above.sum(axis=1, keepdims=True)
    return above | (ties & (np.cumsum(ties, axis=1) <= room))


def distinct_maps(
    activations: np.ndarray, images: np.ndarray, channels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Group (image, channel) items whose min-max normalised maps are equal: they build the same
    masked input. Returns the first item of each group (in item order) and each item's group."""
    if len(images) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    flat = activations[images, channels].reshape(len(images), -1).astype(np.float64)
    lo = flat.min(axis=1, keepdims=True)
    normalised = ((flat - lo) / (flat.max(axis=1, keepdims=True) - lo)).astype(np.float32)
    groups: dict[tuple[int, bytes], int] = {}  # (image, the map's bytes) -> its group
    first: list[int] = []
    group = np.empty(len(images), np.int64)
    for item, (image, row) in enumerate(zip(images, normalised, strict=True)):
        group[item] = groups.setdefault((int(image), row.tobytes()), len(groups))
        if group[item] == len(first):  # a new group: this is its first item
            first.append(item)
    return np.array(first, np.int64), group


def channel_softmax(scores: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Softmax over channels per row; channels marked invalid get weight 0."""
    scores = np.asarray(scores, np.float64)
    valid = np.ones(scores.shape, bool) if valid is None else valid
    masked = np.where(valid, scores, -np.inf)
    top = np.max(masked, axis=-1, keepdims=True)
    e = np.where(valid, np.exp(masked - np.where(np.isfinite(top), top, 0)), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
