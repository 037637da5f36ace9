"""Grad-CAM (Selvaraju et al., ICCV 2017, algorithms §2.1)."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.engine.methods.base import ChannelWeightMethod, Context
from onnxcam.engine.methods.parts.gradients import backward_passes, layer_gradients, mean_gradients
from onnxcam.engine.methods.registry import register


@register
class GradCAM(ChannelWeightMethod):
    """Grad-CAM (Selvaraju et al., ICCV 2017): channels weighted by their mean gradient.

    w_k = (1/Z) sum_ij dy^c/dA^k_ij, L = ReLU(sum_k w_k A^k), y^c the class logit.
    """

    name = "grad-cam"
    uses_gradients = True
    passes = "1 backward"

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        return mean_gradients(layer_gradients(ctx)), backward_passes(ctx)
