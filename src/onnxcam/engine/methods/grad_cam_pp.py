"""Grad-CAM++ (Chattopadhyay et al., WACV 2018, algorithms §2.2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.engine.methods.base import ChannelWeightMethod, Context
from onnxcam.engine.methods.parts.gradients import backward_passes, layer_gradients, spatial_axes
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice

PROFILES = ("pgc", "official", "torchcam")


def gradcam_pp_weights(activations: np.ndarray, grads: np.ndarray, profile: str) -> np.ndarray:
    """Grad-CAM++ channel weights (N, K) under one implementation's formula."""
    axes = spatial_axes(grads)
    g = grads.astype(np.float64)
    g2, g3 = g**2, g**3
    sum_a = activations.astype(np.float64).sum(axis=axes, keepdims=True)
    if profile == "torchcam":
        alpha = g2
    elif profile == "pgc":
        alpha = np.where(g != 0, g2 / (2 * g2 + sum_a * g3 + 1e-6), 0.0)
    else:  # official: zero denominators read as 1, alphas normalised per channel
        denominator = 2 * g2 + sum_a * g3
        alpha = g2 / np.where(denominator != 0, denominator, 1.0)
        norm = alpha.sum(axis=axes, keepdims=True)
        alpha = alpha / np.where(norm != 0, norm, 1.0)
    return (alpha * np.maximum(g, 0)).sum(axis=axes)


@register
class GradCAMPlusPlus(ChannelWeightMethod):
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018): positive gradients weighted per position.

    a_ij = g^2 / (2 g^2 + sum_ab A_ab g^3), w_k = sum_ij a_ij ReLU(g_ij), L = ReLU(sum_k w_k A^k).
    Profiles: `pgc` (pytorch-grad-cam: +1e-6 in the denominator, a = 0 where g = 0), `official`
    (the authors' code and tf-keras-vis: zero denominators read as 1, a normalised per channel),
    `torchcam` (torchcam as written: a = g^2).
    """

    name = "grad-cam++"
    uses_gradients = True
    passes = "1 backward"

    profile: str = choice("pgc", PROFILES, "whose formula to use", what="Grad-CAM++ profile")

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        weights = gradcam_pp_weights(ctx.activations, layer_gradients(ctx), self.profile)
        return weights, {"profile": self.profile, **backward_passes(ctx)}
