"""LeGrad (Bousselham et al., ICCV 2025)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.attention_views import HEAD_INPUTS
from onnxcam.engine.methods.base import Context, MethodOutput
from onnxcam.engine.methods.parts.attention import AttentionMethod, grid_output
from onnxcam.engine.methods.parts.gradients import score_seed
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import OptionError, choice, integer


@register
class LeGrad(AttentionMethod):
    """LeGrad (Bousselham et al., "An Explainability Method for Vision Transformers via Feature
    Formation Sensitivity", ICCV 2025): each block's own class score, differentiated at that
    block's attention.

    For each block l, s^l = the model's head applied to block l's output tokens (`torchcam`:
    to their mean, as torchcam 0.5 and the authors' code do; `paper`: to the tokens as the head
    reads the last block's); E^l = mean over heads and queries of ReLU(ds^l_c / dA^l), prefix
    keys dropped; the map is the mean of E^l over the last `blocks` blocks. Attention values
    are not multiplied in. One backward pass of a graph that holds each block's second half and
    a copy of the head.
    """

    name = "legrad"
    uses_gradients = True
    passes = "1 backward (per block: its tail and the head)"

    profile: str = choice(
        "torchcam", HEAD_INPUTS, "what each block's score reads", "LeGrad profile"
    )
    blocks: int | None = integer(None, "use the last this many blocks (default: all)", low=1)

    def explain(self, ctx: Context) -> MethodOutput:
        views = ctx.views.attention
        blocks = views.blocks(self.name)
        if self.blocks is not None and self.blocks > len(blocks):
            raise OptionError(
                f"legrad blocks must be at most the model's {len(blocks)} blocks, got {self.blocks}"
            )
        gradients = views.legrad(ctx.x, score_seed(ctx), ctx.batch_size, self.profile)
        used = len(blocks) if self.blocks is None else self.blocks
        prefix, size = blocks[0].grid.prefix, blocks[0].grid.size
        per_block = [
            np.maximum(g.astype(np.float64), 0).mean(axis=(1, 2))[:, prefix:]
            for g in gradients[-used:]
        ]
        raw = np.mean(per_block, axis=0).reshape(len(ctx.x), *size)
        options = {"profile": self.profile, "blocks_used": used}
        return grid_output(raw, ctx, blocks[-used:], "backward", options)
