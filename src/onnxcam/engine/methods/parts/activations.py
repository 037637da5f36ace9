"""Perturbed activations for the methods that run only the graph's tail (Ablation-CAM,
ReciproCAM): each item is one input's layer activation changed by an edit, with the tensors
that cross the cut following their input."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from onnxcam.engine.runner import Perturbation

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
