"""XGrad-CAM (Fu et al., BMVC 2020, algorithms §2.3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.engine.methods.base import ChannelWeightMethod, Context
from onnxcam.engine.methods.parts.gradients import backward_passes, layer_gradients, spatial_axes
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import number


@register
class XGradCAM(ChannelWeightMethod):
    """XGrad-CAM (Fu et al., BMVC 2020): gradients weighted by the normalised activations.

    w_k = sum_ij A^k_ij G^k_ij / (sum_ij A^k_ij + eps), L = ReLU(sum_k w_k A^k); use a post-ReLU
    layer (a negative sum of activations makes the weight blow up).
    """

    name = "xgrad-cam"
    uses_gradients = True
    passes = "1 backward"

    eps: float = number(1e-7, "added to the channel's sum of activations", low=0)

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        a = ctx.activations.astype(np.float64)
        axes = spatial_axes(a)
        grads = layer_gradients(ctx)
        weights = (a * grads).sum(axis=axes) / (a.sum(axis=axes) + self.eps)
        return weights, {"eps": self.eps, **backward_passes(ctx)}
