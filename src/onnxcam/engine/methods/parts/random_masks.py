"""RISE's random masks (Petsiuk, Das, Saenko, BMVC 2018), shared by RISE and D-RISE."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from onnxcam.engine.methods.base import Method
from onnxcam.engine.options import OptionError, integer, number, seed
from onnxcam.engine.runner import Perturbation
from onnxcam.kernels import resize

#: Most masks per input: the papers use 2000-8000; this many costs hours on a CPU already.
MAX_MASKS = 100_000


@dataclass(frozen=True, kw_only=True, eq=False)
class RandomMaskMethod(Method):
    """A method that weighs random masks of the input (RISE, D-RISE): the masks' options,
    declared once (D-RISE redeclares `cells` with its own default)."""

    uses_layer: ClassVar[bool] = False

    n_masks: int = integer(4000, "random masks per input", low=1, most=MAX_MASKS)
    cells: int = integer(7, "grid cells per axis (at most the input's smallest side)", low=1)
    p: float = number(0.5, "probability that a cell is kept", low=0, high=1, low_open=True)
    seed: int = seed()

    def mask_metadata(self) -> dict[str, int | float]:
        """The masks' options as a result records them."""
        return {"n_masks": self.n_masks, "cells": self.cells, "p": self.p, "seed": self.seed}


def check_cells(method: str, cells: int, spatial: tuple[int, ...]) -> None:
    """The grid may not be finer than the input."""
    if cells > min(spatial):
        raise OptionError(
            f"{method}: cells must be at most the input's smallest side {min(spatial)}, got {cells}"
        )


class RiseMasks(Perturbation):
    """Item i: X[images[i]] * M[i mod n_masks]. Mask m is drawn from (seed, m) alone: a random
    grid of `cells` per axis (P(1) = p) and a random shift, so masks are built block by block
    (memory does not grow with n_masks) and do not depend on the batching.

    The masks of the blocks in flight are kept (at most two) so that scoring a block reuses
    them instead of building them again on the main thread.
    """

    def __init__(
        self, x: np.ndarray, n_masks: int, cells: int, p: float, seed: int, images: np.ndarray
    ) -> None:
        spatial = x.shape[2:]
        self.cells, self.p, self.seed = cells, p, seed
        self.cell = [math.ceil(s / cells) for s in spatial]
        self.upsampled = [(cells + 1) * c for c in self.cell]
        self.x, self.images, self.spatial = x, images, spatial
        self.n_items = len(images)
        self.item_shape = x.shape[1:]
        self.n_masks = n_masks
        self._blocks: dict[tuple[int, int], np.ndarray] = {}

    def grid_and_shift(self, mask: int) -> tuple[np.ndarray, list[int]]:
        rng = np.random.default_rng((self.seed, int(mask)))
        grid = (rng.random([self.cells] * len(self.spatial)) < self.p).astype(np.float32)
        return grid, [int(rng.integers(0, c)) for c in self.cell]

    def masks(self, indices: np.ndarray) -> np.ndarray:
        """(B, *spatial) float32 masks for mask indices."""
        drawn = [self.grid_and_shift(m) for m in indices]
        big = resize(np.stack([g for g, _ in drawn]), self.upsampled, align_corners=False)
        out = np.empty((len(indices), *self.spatial), np.float32)
        for b, (_, shift) in enumerate(drawn):
            window = tuple(slice(s, s + n) for s, n in zip(shift, self.spatial, strict=True))
            out[b] = big[(b, *window)]
        return out

    def mask_index(self, start: int, stop: int) -> np.ndarray:
        return np.arange(start, stop) % self.n_masks

    def block_masks(self, start: int, stop: int) -> np.ndarray:
        """Masks of items [start, stop), from the block built by `fill`; older blocks are freed."""
        for (lo, hi), masks in list(self._blocks.items()):
            if hi <= start:
                del self._blocks[(lo, hi)]
            elif lo <= start and stop <= hi:
                return masks[start - lo : stop - lo]
        return self.masks(self.mask_index(start, stop))

    def accumulate(self, saliency: np.ndarray, start: int, stop: int, weights: np.ndarray) -> None:
        """saliency[n] += sum of weights[i] * M_i over the items i of image n in [start, stop):
        weights (B,) or (B, M) for M maps per image."""
        masks = self.block_masks(start, stop)
        for image, lo, hi in self._segments(start, stop):
            saliency[image] += np.tensordot(weights[lo:hi], masks[lo:hi], axes=(0, 0))

    def _segments(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """(image, lo, hi): the items of [start, stop) that are image's, at lo:hi of the block
        (items are image-major, so each image's are one slice)."""
        owners = self.images[start:stop]
        bounds = [0, *(np.flatnonzero(np.diff(owners)) + 1), len(owners)]
        return [(int(owners[lo]), lo, hi) for lo, hi in itertools.pairwise(bounds)]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        masks = self.masks(self.mask_index(start, stop))
        self._blocks[(start, stop)] = masks
        batch = out[: stop - start]
        for image, lo, hi in self._segments(start, stop):  # each image times its masks, in place
            np.multiply(self.x[image], masks[lo:hi, None], out=batch[lo:hi])
        return batch
