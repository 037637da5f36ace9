"""Deletion and insertion, RISE's causal metrics (algorithms §3.2), through the batched runner.

All steps of all images form one sequence of perturbed inputs for `Runner.map_batches`.
"""

from __future__ import annotations

import math

import numpy as np

from onnxcam.engine.blur import separable_filter
from onnxcam.engine.options import check_count
from onnxcam.engine.runner import Perturbation
from onnxcam.engine.scoring import HasScorer, Scorer, scorer_of
from onnxcam.errors import ArgumentError
from onnxcam.evaluation.metrics.common import check_inputs
from onnxcam.evaluation.metrics.curves import Curves

CAUSAL_MODES = ("deletion", "insertion")
GRIDS = ("uniform", "fraction")
#: torchcam's number of equal fractions on its "fraction" grid.
FRACTION_STEPS = 20


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
    return separable_filter(x, kernel, "constant")


class PixelSteps(Perturbation):
    """Item (n, i): start[n] with its counts[i] most salient positions taken from finish[n]."""

    def __init__(self, start, finish, order, counts: np.ndarray) -> None:
        self.start, self.finish, self.order, self.counts = start, finish, order, counts
        self.n_items = len(start) * len(counts)
        self.item_shape = start.shape[1:]

    def fill(self, first: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = out[: stop - first]
        channels = self.item_shape[0]
        for b, item in enumerate(range(first, stop)):
            n, i = divmod(item, len(self.counts))
            flat = batch[b].reshape(channels, -1)
            flat[:] = self.start[n].reshape(channels, -1)
            moved = self.order[n][: self.counts[i]]
            flat[:, moved] = self.finish[n].reshape(channels, -1)[:, moved]
        return batch


def saliency_order(maps: np.ndarray) -> np.ndarray:
    """(N, positions): positions by decreasing saliency, ties by index (stable)."""
    flat = maps.reshape(len(maps), -1)
    return np.argsort(-flat, axis=1, kind="stable")


def step_counts(
    positions: int, grid: str = "uniform", step: int | None = None, steps: int = FRACTION_STEPS
) -> np.ndarray:
    """Positions moved at each point of the curve.

    uniform (RISE): `step` positions at a time (default 1/224 of them, RISE's 224 at 224x224),
    ceil(positions / step) + 1 points. fraction (torchcam): round(i * positions / steps), halves
    to even, for i = 0..steps.
    """
    if grid == "uniform":
        step = check_count("step", step, optional=True) or math.ceil(positions / 224)
        return np.minimum(np.arange(math.ceil(positions / step) + 1) * step, positions)
    if grid == "fraction":
        steps = check_count("steps", steps)
        return np.round(np.arange(steps + 1) * positions / steps).astype(np.int64)
    raise ArgumentError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")


def causal_curves(
    model: Scorer | HasScorer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    mode: str = "deletion",
    step: int | None = None,
    substrate: np.ndarray | None = None,
    grid: str = "uniform",
    steps: int = FRACTION_STEPS,
) -> Curves:
    """Deletion or insertion curves of the class probability (RISE protocol).

    deletion: from X, the most salient positions become `substrate` (default 0, the dataset mean
    in normalised space); insertion: from `substrate` (default RISE's blur of X), they become X.
    `grid`, `step` and `steps` choose the points, see `step_counts`.
    """
    check_inputs(x, maps, classes)
    if mode not in CAUSAL_MODES:
        raise ArgumentError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    positions = int(np.prod(x.shape[2:]))
    counts = step_counts(positions, grid, step, steps)
    if substrate is None:
        substrate = np.zeros_like(x) if mode == "deletion" else rise_blur(x)
    start, finish = (x, substrate) if mode == "deletion" else (substrate, x)
    perturbation = PixelSteps(start, finish, saliency_order(maps), counts)
    classes = np.repeat(classes, len(counts))
    scores = scorer_of(model).score(perturbation, classes, "prob", mode)
    return Curves(counts / positions, scores.reshape(len(x), len(counts)), grid)


def deletion(
    model: Scorer | HasScorer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    step: int | None = None,
    grid: str = "uniform",
    steps: int = FRACTION_STEPS,
) -> np.ndarray:
    """Per input area under the deletion curve (lower is better)."""
    return causal_curves(model, x, maps, classes, "deletion", step, None, grid, steps).areas()


def insertion(
    model: Scorer | HasScorer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    step: int | None = None,
    grid: str = "uniform",
    steps: int = FRACTION_STEPS,
) -> np.ndarray:
    """Per input area under the insertion curve (higher is better)."""
    curves = causal_curves(model, x, maps, classes, "insertion", step, None, grid, steps)
    return curves.areas()
