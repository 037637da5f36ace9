"""Perturbed activations for the methods that run only the graph's tail (Ablation-CAM,
ReciproCAM): each item is one input's layer activation changed by an edit, with the tensors
that cross the cut following their input; or, where the tail starts with a global average
pool, the mean of that changed activation, run through the graph after the pool."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from onnxcam.engine.runner import Perturbation
from onnxcam.engine.scoring import Scorer

#: |y| below this gives ablation weights 0 (the ratio (y - y_k) / y is undefined).
SAFE_SCORE = 1e-12

Edit = Callable[[np.ndarray, int, int], None]


class ActivationEdits(Perturbation):
    """Item i: A[images[i]] changed by `edit`; tensors that cross the cut follow the image."""

    def __init__(
        self,
        activations: np.ndarray,
        images: np.ndarray,
        edit: Edit,
        crossing: dict[str, np.ndarray],
    ) -> None:
        self.activations, self.images = activations, images
        self.edit, self.crossing = edit, crossing
        self.n_items = len(images)
        self.item_shape = activations.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = out[: stop - start]
        self.edit(batch, start, stop)
        return batch

    def feeds(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {name: value[self.images[start:stop]] for name, value in self.crossing.items()}


def tail_route(ctx) -> tuple[np.ndarray, Scorer, dict[str, np.ndarray]]:
    """What a tail method edits and scores through: the layer's means over its positions and
    the graph after the pool when the tail starts with one (Context.pooled), else the
    activations, the tail after the layer and the tensors crossing the cut."""
    if ctx.pooled is not None:
        means, scorer = ctx.pooled
        return means, scorer, {}
    return ctx.activations, ctx.tail_scorer, ctx.views.crossing(ctx.x, ctx.batch_size)
