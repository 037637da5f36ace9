"""Attention rollout (Abnar & Zuidema, ACL 2020)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, MethodOutput
from onnxcam.engine.methods.parts.attention import (
    HEAD_FUSIONS,
    AttentionMethod,
    class_row,
    fuse_heads,
    grid_output,
)
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice, number


def discard_lowest(fused: np.ndarray, ratio: float) -> np.ndarray:
    """Each image's `ratio` lowest entries of its (T, T) matrix set to 0, the class token's
    attention to itself always kept (as the widely used vit-explain code does)."""
    flat = fused.reshape(len(fused), -1).copy()
    count = int(flat.shape[1] * ratio)
    if count:
        lowest = np.argsort(flat, axis=1, kind="stable")[:, :count]
        for row, indices in zip(flat, lowest, strict=True):
            row[indices[indices != 0]] = 0
    return flat.reshape(fused.shape)


def rollout(probabilities: list[np.ndarray], head_fusion: str, ratio: float) -> np.ndarray:
    """R = Â_L ... Â_1 with Â = row-normalised (fuse_heads(A) + I) / 2, (N, T, T)."""
    tokens = probabilities[0].shape[-1]
    eye = np.eye(tokens)
    result = np.broadcast_to(eye, (len(probabilities[0]), tokens, tokens))
    for block in probabilities:
        fused = discard_lowest(fuse_heads(block.astype(np.float64), head_fusion), ratio)
        step = (fused + eye) / 2
        step /= step.sum(axis=-1, keepdims=True)
        result = step @ result
    return result


@register
class AttentionRollout(AttentionMethod):
    """Attention rollout (Abnar & Zuidema, ACL 2020): attention followed through the blocks.

    Per block, A-bar = the heads' mean (or max, min) of the attention probabilities, its
    `discard_ratio` lowest entries set to 0; A-hat = (A-bar + I) / 2, each row normalised to sum
    1 (the identity stands for the residual path); R = A-hat_L ... A-hat_1. The map is the class
    token's row of R over the grid tokens (the mean row where the model has no prefix tokens).
    Class-agnostic: one forward pass.
    """

    name = "attention-rollout"
    passes = "1 forward"

    head_fusion: str = choice("mean", HEAD_FUSIONS, "how heads are fused", what="head fusion")
    discard_ratio: float = number(
        0.0,
        "fraction of each fused matrix's lowest entries set to 0",
        low=0,
        high=1,
        high_open=True,
    )

    def explain(self, ctx: Context) -> MethodOutput:
        views = ctx.views.attention
        blocks = views.blocks(self.name)
        probabilities = views.probabilities(ctx.x, ctx.batch_size)
        raw = class_row(rollout(probabilities, self.head_fusion, self.discard_ratio), blocks[0])
        options = {"head_fusion": self.head_fusion, "discard_ratio": self.discard_ratio}
        return grid_output(raw, ctx, blocks, "forward", options)
