"""Faithfulness metrics (spec §3), run through the same batched runner as the methods.

Each function takes an Explainer, the inputs x (N, C, *S), the maps (N, *S) in [0, 1] and the
explained classes, and returns one value per input. Perturbed inputs of all images go through
`Runner.map_batches` together, never one image at a time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from onnxcam.engine.runner import Perturbation
from onnxcam.engine.targets import class_scores

if TYPE_CHECKING:
    from onnxcam.api import Explainer

POINTING_TOLERANCE = 15


def auc(curve: np.ndarray) -> float:
    """Trapezoid area under a curve sampled on a uniform grid of [0, 1] (RISE's `auc`)."""
    curve = np.asarray(curve, np.float64)
    if len(curve) < 2:
        raise ValueError(f"a curve needs at least 2 points, got {len(curve)}")
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (len(curve) - 1))


def _probabilities(explainer: Explainer, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    logits, _ = explainer.forward(x.astype(explainer.input_dtype, copy=False))
    return class_scores(logits, classes, "prob")


def _check(x: np.ndarray, maps: np.ndarray, classes: np.ndarray) -> None:
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"expected maps of shape {(x.shape[0], *x.shape[2:])}, got {maps.shape}")
    if classes.shape != (x.shape[0],):
        raise ValueError(f"expected {x.shape[0]} classes, got shape {classes.shape}")


def confidence_change(
    explainer: Explainer, x: np.ndarray, maps: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Y, O): class probability of X and of the explanation map E = map * X (Grad-CAM++ §5.1)."""
    _check(x, maps, classes)
    original = _probabilities(explainer, x, classes)
    explained = _probabilities(explainer, x * maps[:, None], classes)
    return original, explained


def average_drop(explainer: Explainer, x: np.ndarray, maps: np.ndarray, classes: np.ndarray):
    """Per input max(0, Y - O) / Y; the paper's Average Drop % is 100 x their mean."""
    original, explained = confidence_change(explainer, x, maps, classes)
    return np.maximum(original - explained, 0) / np.maximum(original, 1e-12)


def increase_in_confidence(
    explainer: Explainer, x: np.ndarray, maps: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Per input 1 where O > Y (strictly); Increase in Confidence % is 100 x their mean."""
    original, explained = confidence_change(explainer, x, maps, classes)
    return (explained > original).astype(np.float64)


def win_rate(drops: dict[str, np.ndarray]) -> tuple[dict[str, float], float]:
    """Share of inputs on which each method has the strictly lowest drop, and the tie share.

    Inputs where two or more methods share the lowest drop count for none of them.
    """
    names = list(drops)
    table = np.stack([np.asarray(drops[n], np.float64) for n in names])
    best = table.min(axis=0)
    winners = table == best
    unique = winners.sum(axis=0) == 1
    rates = {n: float(np.mean(winners[i] & unique)) for i, n in enumerate(names)}
    return rates, float(np.mean(~unique))


def rise_blur(x: np.ndarray) -> np.ndarray:
    """RISE's insertion substrate: per channel, an 11x11 kernel made by scipy's gaussian_filter
    (sigma 5, reflect, truncate 4) of a delta, applied with zero padding 5."""
    radius, sigma, size = int(4 * 5 + 0.5), 5.0, 11
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-(offsets**2) / (2 * sigma**2))
    weights /= weights.sum()
    kernel = np.zeros(size)
    for offset, weight in zip(offsets, weights, strict=True):
        position = size // 2 + offset  # where the delta's mass lands, folded back by reflection
        period = 2 * size
        position %= period
        kernel[position if position < size else period - 1 - position] += weight
    out = x.astype(np.float64)
    for axis in range(2, x.ndim):
        padded = np.pad(out, [(0, 0)] * axis + [(5, 5)] + [(0, 0)] * (x.ndim - axis - 1))
        length = out.shape[axis]
        out = sum(
            kernel[k] * np.take(padded, np.arange(k, k + length), axis=axis) for k in range(size)
        )
    return out.astype(np.float32)


class PixelSteps(Perturbation):
    """Item (n, i): start[n] with its i * step most salient positions taken from finish[n]."""

    def __init__(self, start, finish, order, step: int, n_steps: int) -> None:
        self.start, self.finish, self.order = start, finish, order
        self.step, self.n_steps = step, n_steps
        self.n_items = len(start) * (n_steps + 1)
        self.item_shape = start.shape[1:]

    def fill(self, first: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = out[: stop - first]
        channels = self.item_shape[0]
        for b, item in enumerate(range(first, stop)):
            n, i = divmod(item, self.n_steps + 1)
            flat = batch[b].reshape(channels, -1)
            flat[:] = self.start[n].reshape(channels, -1)
            moved = self.order[n][: i * self.step]
            flat[:, moved] = self.finish[n].reshape(channels, -1)[:, moved]
        return batch


def saliency_order(maps: np.ndarray) -> np.ndarray:
    """(N, positions): positions by decreasing saliency, ties by index (stable)."""
    flat = maps.reshape(len(maps), -1)
    return np.argsort(-flat, axis=1, kind="stable")


def causal_curves(
    explainer: Explainer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    mode: str = "deletion",
    step: int | None = None,
    substrate: np.ndarray | None = None,
) -> np.ndarray:
    """Deletion or insertion curves (N, n_steps + 1) of the class probability (RISE protocol).

    deletion: from X, the most salient `step` positions at a time become `substrate` (default 0,
    the dataset mean in normalised space); insertion: from `substrate` (default RISE's blur of X),
    they become X. step defaults to 1/224 of the positions (224 at 224x224, as RISE's demo).
    """
    _check(x, maps, classes)
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    positions = int(np.prod(x.shape[2:]))
    step = step or math.ceil(positions / 224)
    n_steps = math.ceil(positions / step)
    if substrate is None:
        substrate = np.zeros_like(x) if mode == "deletion" else rise_blur(x)
    start, finish = (x, substrate) if mode == "deletion" else (substrate, x)
    perturbation = PixelSteps(start, finish, saliency_order(maps), step, n_steps)
    item_classes = np.repeat(classes, n_steps + 1)
    scores = explainer.runner.map_batches(
        perturbation,
        explainer.logits_name,
        lambda out, lo, hi: class_scores(out, item_classes[lo:hi], "prob"),
        explainer.batch_size,
        explainer.progress,
        desc=mode,
    )
    return scores.reshape(len(x), n_steps + 1)


def deletion(explainer: Explainer, x, maps, classes, step: int | None = None) -> np.ndarray:
    """Per input area under the deletion curve (lower is better)."""
    curves = causal_curves(explainer, x, maps, classes, "deletion", step)
    return np.array([auc(c) for c in curves])


def insertion(explainer: Explainer, x, maps, classes, step: int | None = None) -> np.ndarray:
    """Per input area under the insertion curve (higher is better)."""
    curves = causal_curves(explainer, x, maps, classes, "insertion", step)
    return np.array([auc(c) for c in curves])


def pointing_game(
    maps: np.ndarray, masks: np.ndarray, tolerance: int = POINTING_TOLERANCE
) -> np.ndarray:
    """Per map 1 if the disk of radius `tolerance` around its first maximum (row-major) meets the
    ground-truth mask: some (r, q) in the mask with (r - y)^2 + (q - x)^2 < tolerance^2."""
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must have the same shape")
    hits = []
    for heat, mask in zip(maps, masks.astype(bool), strict=True):
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        rows, cols = np.nonzero(mask)
        hits.append(bool(np.any((rows - y) ** 2 + (cols - x) ** 2 < tolerance**2)))
    return np.array(hits, np.float64)


def energy_pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per map the share of its energy inside the ground-truth mask (Score-CAM's variant)."""
    total = maps.reshape(len(maps), -1).sum(axis=1)
    inside = (maps * masks.astype(bool)).reshape(len(maps), -1).sum(axis=1)
    return np.divide(inside, total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)
