"""Gradient-weighted attention rollout (Chefer, Gur & Wolf, ICCV 2021)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, MethodOutput
from onnxcam.engine.methods.parts.attention import (
    AttentionMethod,
    class_row,
    grid_output,
)
from onnxcam.engine.methods.parts.gradients import score_seed
from onnxcam.engine.methods.registry import register


def weighted_rollout(probabilities: list[np.ndarray], gradients: list[np.ndarray]) -> np.ndarray:
    """R = I, then R = R + A-bar R per block, A-bar = mean over heads of ReLU(dA * A)."""
    tokens = probabilities[0].shape[-1]
    result = np.broadcast_to(np.eye(tokens), (len(probabilities[0]), tokens, tokens))
    for block, grad in zip(probabilities, gradients, strict=True):
        weighted = np.maximum(grad.astype(np.float64) * block, 0).mean(axis=1)
        result = result + weighted @ result
    return result


@register
class GradientRollout(AttentionMethod):
    """Gradient-weighted rollout (Chefer, Gur & Wolf, "Generic Attention-model Explainability",
    ICCV 2021): attention weighted by the class score's gradient, rolled out with residuals.

    Per block, A-bar = E_h[ReLU(dy^c/dA * A)] over heads; R = I, then R = R + A-bar R block
    after block. The map is the class token's row of R over the grid tokens (the mean row where
    the model has no prefix tokens). One backward pass
    of the whole model, through the ONNX backward graph.
    """

    name = "gradient-rollout"
    uses_gradients = True
    passes = "1 backward"

    def explain(self, ctx: Context) -> MethodOutput:
        views = ctx.views.attention
        blocks = views.blocks(self.name)
        probabilities, gradients = views.gradients(ctx.x, score_seed(ctx), ctx.batch_size)
        raw = class_row(weighted_rollout(probabilities, gradients), blocks[0])
        return grid_output(raw, ctx, blocks, "backward", {})
