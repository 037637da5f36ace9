"""Relevance at the input for LRP and the SR map: one ONNX graph (the BatchNorm-folded model
plus the relevance sweep, engine/backward/relevance) seeded at the class scores with the
explained class's logit, so the relevance starts at y_c; under a region or box target, at the
model's output with the target's gradient times that output (ModelViews.relevance_seed).

The z^B bounds default to what pixels 0 and 1 become under the preprocessing stored in the
model (for EfficientNet's (x - 0.5) / 0.5: -1 and 1); a model without one gets 0 and 1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import onnx

from onnxcam.engine import backward, graph, metadata
from onnxcam.engine.backward.relevance import ABSORBED, Composite
from onnxcam.engine.methods.base import Context, Method
from onnxcam.engine.methods.parts.gradients import score_seed
from onnxcam.engine.options import reuse


@dataclass(frozen=True, kw_only=True, eq=False)
class RelevanceMethod(Method):
    """A method built on input relevance; its options choose the composite."""

    uses_layer: ClassVar[bool] = False
    uses_gradients: ClassVar[bool] = True  # relevance is a backward sweep; boxes score IoU x score

    composite: str = reuse(Composite, "name")
    epsilon: float = reuse(Composite, "epsilon")
    gamma: float = reuse(Composite, "gamma")
    low: float | tuple[float, ...] | None = reuse(Composite, "low")
    high: float | tuple[float, ...] | None = reuse(Composite, "high")
    stabiliser: float = reuse(Composite, "stabiliser")
    profile: str = reuse(Composite, "profile")

    def rules_for(self, model: onnx.ModelProto, channels: int) -> Composite:
        """The composite, its z^B bounds completed from the model's stored preprocessing (of
        the model's `channels` input channels)."""
        low, high = self.low, self.high
        stored = metadata.stored_preprocess(model)
        if stored is not None and (low is None or high is None):
            mean = np.asarray(stored["mean"], np.float64)[:channels]
            std = np.asarray(stored["std"], np.float64)[:channels]
            low = tuple((0 - mean) / std) if low is None else low
            high = tuple((1 - mean) / std) if high is None else high
        return Composite(
            self.composite,
            self.epsilon,
            self.gamma,
            low,
            high,
            self.stabiliser,
            self.profile,
        )

    def input_relevance(self, ctx: Context) -> tuple[np.ndarray, dict]:
        """(N, C, *S) signed relevance of every input element for each input's explained class,
        and what every result of it carries: the composite, per input the relevance's sum, and
        as shares of the explained score that sum (`conservation`) and what biases took
        (`absorbed`). Both near 1 together where nothing was lost or created on the way."""
        runner = ctx.views.relevance(self.rules_for(ctx.views.model, ctx.x.shape[1]))
        score = ctx.logits[np.arange(len(ctx.x)), ctx.targets].astype(np.float64)
        rows = score_seed(ctx)
        source = graph.model_input(ctx.views.model).name
        feeds = ctx.views.relevance_seed(runner, ctx.x, rows, score, ctx.batch_size)
        names = [backward.grad_name(source), backward.tally_name(ABSORBED)]
        relevance, absorbed = runner.run(ctx.x, names, ctx.batch_size, feeds)
        total = relevance.reshape(len(relevance), -1).sum(axis=1, dtype=np.float64)
        safe = np.where(score == 0, 1.0, score)
        metadata = {
            "composite": self.composite,
            "relevance_sum": total,
            "conservation": np.where(score == 0, np.nan, total / safe),
            "absorbed": np.where(score == 0, np.nan, absorbed.astype(np.float64) / safe),
        }
        return relevance.astype(np.float32, copy=False), metadata
