"""HiResCAM (Draelos & Carin 2020, algorithms §2.5)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, Method, MethodOutput
from onnxcam.engine.methods.parts.gradients import backward_passes, layer_gradients
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import flag
from onnxcam.engine.postprocess import PostProcess, finish_maps


@register
class HiResCAM(Method):
    """HiResCAM (Draelos & Carin, arXiv 2011.08891): gradients times activations, element-wise.

    L = sum_k G^k * A^k (no averaging): for a flatten -> Linear head, each position's exact
    contribution to y^c; equal to Grad-CAM for a GAP + Linear head.
    """

    name = "hires-cam"
    uses_gradients = True
    passes = "1 backward"

    relu: bool = flag(True, "keep only the positive part (false: signed raw map)")

    def explain(self, ctx: Context) -> MethodOutput:
        signed = (layer_gradients(ctx) * ctx.activations).sum(axis=1)
        raw = np.maximum(signed, 0) if self.relu else signed
        maps, constant = finish_maps(raw.astype(np.float32), ctx.input_size, PostProcess())
        metadata = {"relu": self.relu, "constant_maps": constant.tolist()}
        return MethodOutput(raw, maps, None, {**metadata, **backward_passes(ctx)})
