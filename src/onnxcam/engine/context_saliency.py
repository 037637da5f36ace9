"""Context-aware saliency (Goferman, Zelnik-Manor, Tal; algorithms §2.18), on images and 1-D series.

A patch is salient when it differs from the patches most similar to it (the K nearest in
colour, discounted by distance in position) across several scales, and is then drawn towards
the most salient places (immediate context). The all-pairs patch search is the Numba kernel
`kernels.patch_search`; everything around it is array bookkeeping here.

Input sizes: the larger spatial axis is reduced to `side` (250 px, as the paper) before the
search and the map is resized back, so a large photo costs what a 250 px one does. The search
is O(P * Q * D) per scale (P patches, Q = P + P/4 + P/16 candidates from scales r, r/2, r/4, D
features per patch). With `side=None` an input whose patch grid exceeds `max_patches` is
refused with the numbers.

Choices where the paper leaves room (docs/design.md): features are scaled by one factor to
[0, 1] (Lab geometry kept) so the vectorised patch distance divided by sqrt(D) lies in [0, 1];
patches sit on a grid every `stride` samples with edge padding and each scale's map is
interpolated from the grid; a patch is not its own neighbour; the averaged map is min-max
normalised before the attention threshold; smaller inputs are not enlarged to `side`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from onnxcam.engine.lab import rgb_to_lab
from onnxcam.engine.options import Options, choice, fractions, integer, number
from onnxcam.errors import ArgumentError
from onnxcam.kernels import minmax_normalize, resize
from onnxcam.kernels.distance import distance_to_mask
from onnxcam.kernels.patch_search import knn_mean_distance

COLOURS = ("auto", "lab", "grey", "raw")


@dataclass(frozen=True, kw_only=True)
class ContextSaliency(Options):
    """Options of context-aware saliency. colour "auto" reads 3-channel images as Lab (RGB in
    [0, 1], as the paper), 1-channel images as grey (their L*) and series as raw values."""

    patch: int = integer(7, "patch side in samples of the working input", low=1, most=63)
    stride: int = integer(3, "distance between patch centres", low=1)
    k: int = integer(64, "nearest patches a patch is compared with", low=1)
    c: float = number(3.0, "weight of position against colour in the patch distance", low=0)
    scales: tuple[float, ...] = fractions((1.0, 0.8, 0.5, 0.3), "scales of the input")
    neighbour_scales: tuple[float, ...] = fractions(
        (1.0, 0.5, 0.25), "per scale r, the scales r * q where neighbours are searched"
    )
    threshold: float = number(
        0.8,
        "attended samples: above this on the normalised mean map",
        low=0,
        high=1,
        high_open=True,
    )
    side: int | None = integer(
        250, "working size of the larger spatial axis (None: the input's)", low=8, optional=True
    )
    max_patches: int = integer(40_000, "largest patch grid searched when side is None", low=1)
    colour: str = choice("auto", COLOURS, "how samples become features", what="colour")


def features(x: np.ndarray, colour: str) -> np.ndarray:
    """(F, H, W) features of a (C, H, W) input scaled by one factor to [0, 1]."""
    series = x.shape[1] == 1
    if colour == "auto":
        colour = "raw" if series else {3: "lab", 1: "grey"}.get(x.shape[0], "raw")
    if colour in ("lab", "grey"):
        expected = 3 if colour == "lab" else 1
        if x.shape[0] != expected or x.min() < 0 or x.max() > 1:
            raise ArgumentError(
                f"colour={colour!r} expects {expected} channel(s) with values in [0, 1], got "
                f"{x.shape[0]} channel(s) in [{x.min():.3g}, {x.max():.3g}]"
            )
        x = rgb_to_lab(x) if colour == "lab" else rgb_to_lab(np.repeat(x, 3, axis=0))[:1]
    scaled, _ = minmax_normalize(np.asarray(x, np.float32)[None], eps=0.0)  # one map: one factor
    return scaled[0]


def rescale(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(F, h, w) -> (F, *size) per channel with Pillow's antialiased bilinear filter."""
    if x.shape[1:] == size:
        return x
    planes = [
        np.asarray(Image.fromarray(plane, mode="F").resize(size[::-1], Image.Resampling.BILINEAR))
        for plane in x
    ]
    return np.stack(planes).astype(np.float32)


def grid(length: int, stride: int) -> np.ndarray:
    """Patch centres along one axis: evenly spaced from the first to the last sample."""
    count = int(np.ceil((length - 1) / stride)) + 1 if length > 1 else 1
    return np.linspace(0, length - 1, count)


def patches(
    x: np.ndarray, patch: int, stride: int, series: bool
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(P, D) patch vectors, (P, 2) centres in units of the larger axis, and the grid shape.
    Patches are 1 x patch for series and patch x patch for images, whatever the scale (an
    image scaled down to one row keeps square patches, edge-padded)."""
    patch_h = 1 if series else patch
    pad = ((0, 0), (patch_h // 2, patch_h // 2), (patch // 2, patch // 2))
    windows = sliding_window_view(np.pad(x, pad, mode="edge"), (patch_h, patch), axis=(1, 2))
    ys, xs = grid(x.shape[1], stride), grid(x.shape[2], stride)
    chosen = windows[:, np.round(ys).astype(int)][:, :, np.round(xs).astype(int)]
    vectors = chosen.transpose(1, 2, 0, 3, 4).reshape(len(ys) * len(xs), -1)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    centres = np.stack([yy.ravel(), xx.ravel()], axis=1) / max(x.shape[1:])
    return np.ascontiguousarray(vectors), centres.astype(np.float32), (len(ys), len(xs))


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return tuple(1 if n == 1 else max(1, round(n * scale)) for n in size)


def work_size(size: tuple[int, int], opts: ContextSaliency) -> tuple[int, int]:
    """The size the search runs at: the larger axis brought down to opts.side; checked."""
    if opts.side is not None and max(size) > opts.side:
        size = scaled_size(size, opts.side / max(size))
    count = len(grid(size[0], opts.stride)) * len(grid(size[1], opts.stride))
    if count > opts.max_patches:
        raise ArgumentError(
            f"context-aware saliency at {size[0]}x{size[1]} would compare {count} patches with "
            f"about {int(count * 1.3)} candidates each (O(P^2) per scale); pass side=N to "
            f"search at a smaller size (the default 250 does) or raise max_patches "
            f"({opts.max_patches})"
        )
    return size


def own_rows(chosen: list[tuple], neighbour_scales: tuple[float, ...]) -> int | None:
    """Where the query scale's own patches start among the candidates (None: not among them),
    so that no patch counts itself as a neighbour."""
    if 1.0 not in neighbour_scales:
        return None
    return sum(len(vectors) for vectors, _, _ in chosen[: neighbour_scales.index(1.0)])


def context_saliency(x: np.ndarray, opts: ContextSaliency | None = None) -> tuple[np.ndarray, dict]:
    """Saliency map in [0, 1] of one input, (C, H, W) image or (C, T) series, same spatial size.

    Also returns what it did: the working size and patch count per scale.
    """
    opts = opts or ContextSaliency()
    x = np.asarray(x, np.float32)
    if x.ndim not in (2, 3) or not np.isfinite(x).all() or max(x.shape[1:], default=0) < 2:
        raise ArgumentError(
            f"expected a finite (C, H, W) image or (C, T) series with 2 or more samples, got "
            f"shape {x.shape}"
        )
    spatial = x.shape[1:]
    planes = x[:, None, :] if x.ndim == 2 else x
    feats = features(planes, opts.colour)
    size = work_size(planes.shape[1:], opts)
    work = rescale(feats, size)
    needed = {r * q for r in opts.scales for q in opts.neighbour_scales} | set(opts.scales)
    sets = {
        s: patches(rescale(work, scaled_size(size, s)), opts.patch, opts.stride, x.ndim == 2)
        for s in needed
    }
    per_scale = []
    for r in opts.scales:
        queries, query_pos, shape = sets[r]
        chosen = [sets[r * q] for q in opts.neighbour_scales]
        candidates = np.concatenate([vectors for vectors, _, _ in chosen])
        cand_pos = np.concatenate([pos for _, pos, _ in chosen])
        self_offset = own_rows(chosen, opts.neighbour_scales)
        k = min(opts.k, len(candidates) - (self_offset is not None))
        mean = knn_mean_distance(queries, query_pos, candidates, cand_pos, k, opts.c, self_offset)
        single, _ = minmax_normalize((1 - np.exp(-mean)).reshape(1, *shape))
        per_scale.append(resize(single, size, align_corners=True)[0])
    average, _ = minmax_normalize(np.mean(per_scale, axis=0)[None])
    average = average[0]
    attended = average > opts.threshold
    if attended.any():
        foci = distance_to_mask(attended)
        average = average * (1 - foci / foci.max() if foci.max() > 0 else 1)
    final, constant = minmax_normalize(resize(average[None], planes.shape[1:])[0][None])
    info = {
        "work_size": list(size),
        "patches": {r: len(sets[r][0]) for r in opts.scales},
        "constant": bool(constant[0]),
    }
    return final[0].reshape(spatial), info
