"""D-RISE (Petsiuk et al., CVPR 2021): RISE's masks weighted by detection similarity."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, MethodOutput, passes_of
from onnxcam.engine.methods.parts.random_masks import RandomMaskMethod, RiseMasks, check_cells
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import integer
from onnxcam.kernels import minmax_normalize


@register
class DRISE(RandomMaskMethod):
    """D-RISE (Petsiuk, Jain, Manjunatha, Lee, Cruz, Saenko, CVPR 2021): random masks, each
    weighted by how well the masked input still detects the explained box.

    S_t = 1/(N p) sum_i w_i^t M_i, w_i^t = max_j IoU(d_t, d_j) cos(c_t, c_j) o_j over the
    detections (anchors) d_j of X * M_i: the box target's D-RISE score. Every box of the
    target (all of `detection` targets' boxes, `detections` for every box found) is
    explained by the same masked passes (`Explanation.instances`); a class or region target
    weighs masks by its score (a class's probability). Masks are RISE's.
    """

    name = "d-rise"
    passes = "`n_masks`"

    cells: int = integer(16, "grid cells per axis (at most the input's smallest side)", low=1)

    def explain(self, ctx: Context) -> MethodOutput:
        check_cells(self.name, self.cells, ctx.input_size)
        n_images = len(ctx.x)
        # a box target's instances each get a map; a class target only its own class's
        n_maps = ctx.logits.shape[1] if ctx.raw_scores else 1
        images = np.repeat(np.arange(n_images), self.n_masks)
        perturbation = RiseMasks(ctx.x, self.n_masks, self.cells, self.p, self.seed, images)
        saliency = np.zeros((n_images, n_maps, *ctx.input_size), np.float64)

        def accumulate(start: int, stop: int, scores: np.ndarray, out: np.ndarray) -> None:
            if ctx.raw_scores:  # every instance's score
                weights = out.reshape(len(out), -1).astype(np.float64)
            else:  # the explained class's probability, as the scorer read it
                weights = scores[:, None]
            perturbation.accumulate(saliency, start, stop, weights)

        ctx.scorer.score(perturbation, ctx.targets[images], "prob", self.name, accumulate)
        every = (saliency / (self.n_masks * self.p)).astype(np.float32)
        flat, constant = minmax_normalize(every.reshape(-1, *ctx.input_size), 1e-8)
        instances = flat.reshape(every.shape)
        explained = (np.arange(n_images), ctx.targets if ctx.raw_scores else 0)
        metadata = {
            **self.mask_metadata(),
            **passes_of(images, n_images),
            "constant_maps": constant.reshape(every.shape[:2])[explained].tolist(),
        }
        return MethodOutput(
            every[explained], instances[explained], None, metadata, instances=instances
        )
