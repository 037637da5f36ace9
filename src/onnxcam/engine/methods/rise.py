"""RISE (Petsiuk, Das, Saenko, BMVC 2018, algorithms §2.13)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, MethodOutput, passes_of
from onnxcam.engine.methods.parts.random_masks import RandomMaskMethod, RiseMasks, check_cells
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice
from onnxcam.engine.targets import SCORE_KINDS
from onnxcam.kernels import minmax_normalize

__all__ = ["RISE", "RiseMasks"]


@register
class RISE(RandomMaskMethod):
    """RISE (Petsiuk, Das, Saenko, BMVC 2018): random masks weighted by the class score.

    S = 1/(N p) sum_i p^c(X * M_i) M_i; each mask a random binary grid of `cells` per axis
    (P(1) = p) upsampled bilinearly to (cells + 1) cell sizes and cropped at a random shift.
    Mask i comes from (`seed`, i) and masks are built block by block: memory does not grow
    with N, and the map does not depend on batching or provider.
    """

    name = "rise"
    passes = "`n_masks`"

    score: str = choice("prob", SCORE_KINDS, "class score that weights a mask", what="RISE score")

    def explain(self, ctx: Context) -> MethodOutput:
        check_cells(self.name, self.cells, ctx.input_size)
        n_images = len(ctx.x)
        images = np.repeat(np.arange(n_images), self.n_masks)
        perturbation = RiseMasks(ctx.x, self.n_masks, self.cells, self.p, self.seed, images)
        saliency = np.zeros((n_images, *ctx.input_size), np.float64)

        def accumulate(start: int, stop: int, scores: np.ndarray, _: np.ndarray) -> None:
            perturbation.accumulate(saliency, start, stop, scores)

        ctx.scorer.score(perturbation, ctx.targets[images], self.score, self.name, accumulate)
        raw = (saliency / (self.n_masks * self.p)).astype(np.float32)
        maps, constant = minmax_normalize(raw, 1e-8)
        metadata = {
            **self.mask_metadata(),
            **passes_of(images, n_images),
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, None, metadata)
