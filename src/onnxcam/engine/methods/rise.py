"""RISE (Petsiuk, Das, Saenko, BMVC 2018, algorithms §2.13)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from onnxcam.engine.methods.base import Context, Method, MethodOutput, passes_of
from onnxcam.engine.methods.parts.random_masks import MAX_MASKS, RiseMasks, check_cells
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice, integer, number, seed
from onnxcam.engine.targets import SCORE_KINDS
from onnxcam.kernels import minmax_normalize

__all__ = ["RISE", "RiseMasks"]


@register
class RISE(Method):
    """RISE (Petsiuk, Das, Saenko, BMVC 2018): random masks weighted by the class score.

    S = 1/(N p) sum_i p^c(X * M_i) M_i; each mask a random binary grid of `cells` per axis
    (P(1) = p) upsampled bilinearly to (cells + 1) cell sizes and cropped at a random shift.
    Mask i comes from (`seed`, i) and masks are built block by block: memory does not grow
    with N, and the map does not depend on batching or provider.
    """

    uses_layer: ClassVar[bool] = False

    name = "rise"
    passes = "`n_masks`"

    n_masks: int = integer(4000, "random masks per input", low=1, most=MAX_MASKS)
    cells: int = integer(7, "grid cells per axis (at most the input's smallest side)", low=1)
    p: float = number(0.5, "probability that a cell is kept", low=0, high=1, low_open=True)
    seed: int = seed()
    score: str = choice("prob", SCORE_KINDS, "class score that weights a mask", what="RISE score")

    def explain(self, ctx: Context) -> MethodOutput:
        check_cells(self.name, self.cells, ctx.input_size)
        n_images = len(ctx.x)
        images = np.repeat(np.arange(n_images), self.n_masks)
        perturbation = RiseMasks(ctx.x, self.n_masks, self.cells, self.p, self.seed, images)
        saliency = np.zeros((n_images, *ctx.input_size), np.float64)

        def accumulate(start: int, stop: int, scores: np.ndarray, _: np.ndarray) -> None:
            masks = perturbation.block_masks(start, stop)
            owners = images[start:stop]
            for n in np.unique(owners):
                saliency[n] += np.tensordot(scores[owners == n], masks[owners == n], axes=1)

        ctx.scorer.score(perturbation, ctx.targets[images], self.score, self.name, accumulate)
        raw = (saliency / (self.n_masks * self.p)).astype(np.float32)
        maps, constant = minmax_normalize(raw, 1e-8)
        metadata = {
            "n_masks": self.n_masks,
            "cells": self.cells,
            "p": self.p,
            "seed": self.seed,
            **passes_of(images, n_images),
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, None, metadata)
