"""Black-box methods that perturb the input and need no layer (spec §2.13, §2.14).

- `rise` (Petsiuk et al. 2018): S = 1/(N p) sum_i p^c(X * M_i) M_i over N random masks, each a
  random binary grid of `cells` per axis (P(1) = p) upsampled bilinearly to (cells + 1) cell
  sizes and cropped at a random shift. Masks come from `seed` and are built chunk by chunk, so
  memory does not grow with N and the map does not depend on batching or provider.
- `occlusion` (Zeiler & Fergus 2014): windows of `patch` (stride `stride`) set to `value`; each
  position's attribution (`raw`, signed) is the mean of f^c(X) - f^c(X occluded) over the
  windows covering it; `maps` keep its positive part, min-max normalised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from onnxcam.engine.methods.base import (
    Context,
    Method,
    MethodOutput,
    passes_per_input,
    positive_int,
    register,
)
from onnxcam.engine.runner import Perturbation
from onnxcam.engine.targets import SCORE_KINDS, class_scores
from onnxcam.kernels import minmax_normalize, resize


class RiseMasks(Perturbation):
    """Item i: X[images[i]] * M[i mod n_masks]; masks are built from (grid, shift) per block.

    The masks of the blocks in flight are kept (at most two) so that scoring a block reuses
    them instead of building them again on the main thread.
    """

    def __init__(
        self, x: np.ndarray, n_masks: int, cells: int, p: float, seed: int, images: np.ndarray
    ) -> None:
        spatial = x.shape[2:]
        rng = np.random.default_rng(seed)
        self.grids = (rng.random((n_masks, *[cells] * len(spatial))) < p).astype(np.float32)
        self.cell = [math.ceil(s / cells) for s in spatial]
        self.shifts = np.stack([rng.integers(0, c, n_masks) for c in self.cell], axis=1)
        self.upsampled = [(cells + 1) * c for c in self.cell]
        self.x, self.images, self.spatial = x, images, spatial
        self.n_items = len(images)
        self.item_shape = x.shape[1:]
        self.n_masks = n_masks
        self._blocks: dict[tuple[int, int], np.ndarray] = {}

    def masks(self, indices: np.ndarray) -> np.ndarray:
        """(B, *spatial) float32 masks for mask indices."""
        big = resize(self.grids[indices], self.upsampled, align_corners=False)
        out = np.empty((len(indices), *self.spatial), np.float32)
        for b, shift in enumerate(self.shifts[indices]):
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

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        masks = self.masks(self.mask_index(start, stop))
        self._blocks[(start, stop)] = masks
        batch = out[: stop - start]
        np.multiply(self.x[self.images[start:stop]], masks[:, None], out=batch)
        return batch


@register
class RISE(Method):
    name = "rise"

    def __init__(
        self,
        n_masks: int = 4000,
        cells: int = 7,
        p: float = 0.5,
        seed: int = 0,
        score: str = "prob",
    ) -> None:
        if not isinstance(p, (int, float)) or not 0 < p <= 1 or score not in SCORE_KINDS:
            raise ValueError(
                f"rise needs 0 < p <= 1 and score in {SCORE_KINDS}; got {p!r}, {score!r}"
            )
        self.n_masks = positive_int("n_masks", n_masks)
        self.cells = positive_int("cells", cells)
        self.p, self.seed, self.score = p, seed, score

    def explain(self, ctx: Context) -> MethodOutput:
        n_images = len(ctx.x)
        images = np.repeat(np.arange(n_images), self.n_masks)
        perturbation = RiseMasks(ctx.x, self.n_masks, self.cells, self.p, self.seed, images)
        saliency = np.zeros((n_images, *ctx.input_size), np.float64)
        classes = ctx.targets[images]

        def accumulate(out: np.ndarray, start: int, stop: int) -> np.ndarray:
            scores = class_scores(out, classes[start:stop], self.score)
            masks = perturbation.block_masks(start, stop)
            owners = images[start:stop]
            for n in np.unique(owners):
                saliency[n] += np.tensordot(scores[owners == n], masks[owners == n], axes=1)
            return scores

        ctx.runner.map_batches(
            perturbation, ctx.logits_name, accumulate, ctx.batch_size, ctx.progress, desc=self.name
        )
        raw = (saliency / (self.n_masks * self.p)).astype(np.float32)
        maps, constant = minmax_normalize(raw, 1e-8)
        metadata = {
            "n_masks": self.n_masks,
            "cells": self.cells,
            "p": self.p,
            "seed": self.seed,
            "passes_run": len(images),
            "passes_per_input": passes_per_input(images, n_images),
            "passes_skipped": 0,
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, None, metadata)


def window_starts(length: int, patch: int, stride: int) -> np.ndarray:
    """Window starts along one axis: 0, stride, ... while the window fits."""
    if not 1 <= patch <= length or stride < 1:
        raise ValueError(
            f"occlusion needs 1 <= patch <= {length} and stride >= 1, got {patch}, {stride}"
        )
    return np.arange(0, length - patch + 1, stride)


class OccludedInputs(Perturbation):
    """Item i: X[images[i]] with window windows[i] set to `value`."""

    def __init__(self, x, images, windows, patch: Sequence[int], value: float) -> None:
        self.x, self.images, self.windows = x, images, windows
        self.patch, self.value = patch, value
        self.n_items = len(images)
        self.item_shape = x.shape[1:]

    def region(self, i: int) -> tuple[slice, ...]:
        return tuple(slice(s, s + p) for s, p in zip(self.windows[i], self.patch, strict=True))

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = np.take(self.x, self.images[start:stop], axis=0, out=out[: stop - start])
        for b, i in enumerate(range(start, stop)):
            batch[(b, slice(None), *self.region(i))] = self.value
        return batch


@register
class Occlusion(Method):
    name = "occlusion"

    def __init__(
        self,
        patch: int | None = None,
        stride: int | None = None,
        value: float = 0.0,
        score: str = "prob",
    ) -> None:
        if score not in SCORE_KINDS:
            raise ValueError(f"occlusion score must be one of {SCORE_KINDS}, got {score!r}")
        self.patch = positive_int("patch", patch, optional=True)
        self.stride = positive_int("stride", stride, optional=True)
        self.value, self.score = value, score

    def explain(self, ctx: Context) -> MethodOutput:
        spatial = ctx.input_size
        patch = self.patch if self.patch is not None else max(1, min(spatial) // 8)
        stride = self.stride if self.stride is not None else max(1, patch // 2)
        starts = [window_starts(length, patch, stride) for length in spatial]
        windows = np.stack(np.meshgrid(*starts, indexing="ij"), axis=-1).reshape(-1, len(spatial))
        n_images, n_windows = len(ctx.x), len(windows)
        images = np.repeat(np.arange(n_images), n_windows)
        perturbation = OccludedInputs(
            ctx.x, images, np.tile(windows, (n_images, 1)), [patch] * len(spatial), self.value
        )
        original = class_scores(ctx.logits, ctx.targets, self.score)
        total = np.zeros((n_images, *spatial), np.float64)
        count = np.zeros(spatial, np.float64)
        for w in range(n_windows):
            count[perturbation.region(w)] += 1
        classes = ctx.targets[images]

        def accumulate(out: np.ndarray, start: int, stop: int) -> np.ndarray:
            scores = class_scores(out, classes[start:stop], self.score)
            for b, i in enumerate(range(start, stop)):
                total[(images[i], *perturbation.region(i))] += original[images[i]] - scores[b]
            return scores

        ctx.runner.map_batches(
            perturbation, ctx.logits_name, accumulate, ctx.batch_size, ctx.progress, desc=self.name
        )
        raw = np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)
        maps, constant = minmax_normalize(np.maximum(raw, 0), 1e-8)
        metadata = {
            "patch": patch,
            "stride": stride,
            "value": self.value,
            "windows": n_windows,
            "passes_run": len(images),
            "passes_per_input": passes_per_input(images, n_images),
            "passes_skipped": 0,
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, None, metadata)
