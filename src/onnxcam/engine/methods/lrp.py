"""Layer-wise relevance propagation (spec §2.17): `explain(x, method="lrp", composite=...)`.

One ONNX graph (the BatchNorm-folded model plus the relevance sweep, engine/backward/relevance)
runs batched in ORT; it is seeded at the class scores with y_c on the explained class, so the
relevance starts at the logit. The result carries the signed input relevance `relevance`
(N, C, *S); `raw` is its sum over channels (signed, unnormalised) and `maps` the positive part
of that sum divided by its maximum (all zeros where no element has positive relevance), the
same [0, 1] convention as the CAM maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnxcam.engine import backward, graph
from onnxcam.engine.backward.relevance import Composite
from onnxcam.engine.methods.base import Context, Method, MethodOutput, register
from onnxcam.engine.methods.gradient import one_hot


def input_relevance(ctx: Context, composite: Composite) -> np.ndarray:
    """(N, C, *S) signed relevance of every input element for each input's explained class."""
    runner = ctx.views.relevance(composite)
    seed = one_hot(ctx.targets, ctx.logits.shape[1])
    seed *= ctx.logits[np.arange(len(ctx.x)), ctx.targets][:, None]
    source = graph.model_input(ctx.views.model).name
    feeds = ctx.views.score_seed(runner, seed)
    (relevance,) = runner.run(ctx.x, [backward.grad_name(source)], ctx.batch_size, feeds)
    return relevance.astype(np.float32, copy=False)


def positive_maps(signed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive part over its per-map maximum; and which maps had no positive element."""
    positive = np.maximum(signed, 0).astype(np.float32)
    top = positive.reshape(len(positive), -1).max(axis=1)
    empty = top <= 0
    scale = np.where(empty, 1.0, top).reshape(-1, *[1] * (positive.ndim - 1))
    return (positive / scale).astype(np.float32), empty


@register
class LRP(Method):
    name = "lrp"

    def __init__(
        self,
        composite: str = "epsilon-plus",
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        low: float | Sequence[float] = 0.0,
        high: float | Sequence[float] = 1.0,
    ) -> None:
        self.composite = Composite(composite, epsilon, gamma, low, high)

    def explain(self, ctx: Context) -> MethodOutput:
        relevance = input_relevance(ctx, self.composite)
        raw = relevance.sum(axis=1)
        maps, empty = positive_maps(raw)
        metadata = {
            "composite": self.composite.name,
            "relevance_sum": relevance.reshape(len(raw), -1).sum(axis=1, dtype=np.float64),
            "constant_maps": empty.tolist(),
            "passes_run": len(ctx.x),
            "passes_skipped": 0,
            "passes_per_input": [1] * len(ctx.x),
            "backward_graph": "relevance",
        }
        return MethodOutput(raw, maps, None, metadata, relevance)
