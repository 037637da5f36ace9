"""Layer-wise relevance propagation (Bach et al. 2015, algorithms §2.17)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, MethodOutput, passes
from onnxcam.engine.methods.parts.relevance import RelevanceMethod
from onnxcam.engine.methods.registry import register


def positive_maps(signed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive part over its per-map maximum; and which maps had no positive element."""
    positive = np.maximum(signed, 0).astype(np.float32)
    top = positive.reshape(len(positive), -1).max(axis=1)
    empty = top <= 0
    scale = np.where(empty, 1.0, top).reshape(-1, *[1] * (positive.ndim - 1))
    return (positive / scale).astype(np.float32), empty


@register
class LRP(RelevanceMethod):
    """Layer-wise relevance propagation (Bach et al., PLoS ONE 2015): the explained class's
    logit redistributed layer by layer down to the input, under a composite of rules.

    `relevance` is the signed input relevance (N, C, *S); `raw` its sum over channels; `maps`
    the positive part of that sum divided by its maximum. Composites follow zennit's
    (`epsilon-plus`: z+ on Conv, epsilon on dense), plus `sr-official`, the SR-map code's rules.
    """

    name = "lrp"
    passes = "1 relevance pass"

    def explain(self, ctx: Context) -> MethodOutput:
        relevance, metadata = self.input_relevance(ctx)
        raw = relevance.sum(axis=1)
        maps, empty = positive_maps(raw)
        metadata |= {
            "constant_maps": empty.tolist(),
            **passes([1] * len(ctx.x)),
            "backward_graph": "relevance",
        }
        return MethodOutput(raw, maps, None, metadata, relevance)
