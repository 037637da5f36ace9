"""Relevance at the input for LRP and the SR map: one ONNX graph (the BatchNorm-folded model
plus the relevance sweep, engine/backward/relevance) seeded at the class scores with the
explained class's logit, so the relevance starts at y_c."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from onnxcam.engine import backward, graph
from onnxcam.engine.backward.relevance import Composite
from onnxcam.engine.methods.base import Context, Method
from onnxcam.engine.methods.parts.gradients import one_hot
from onnxcam.engine.options import reuse


@dataclass(frozen=True, kw_only=True, eq=False)
class RelevanceMethod(Method):
    """A method built on input relevance; its options choose the composite."""

    composite: str = reuse(Composite, "name")
    epsilon: float = reuse(Composite, "epsilon")
    gamma: float = reuse(Composite, "gamma")
    low: float | tuple[float, ...] = reuse(Composite, "low")
    high: float | tuple[float, ...] = reuse(Composite, "high")

    @cached_property
    def rules(self) -> Composite:
        return Composite(self.composite, self.epsilon, self.gamma, self.low, self.high)

    def input_relevance(self, ctx: Context) -> np.ndarray:
        """(N, C, *S) signed relevance of every input element for each input's explained class."""
        runner = ctx.views.relevance(self.rules)
        seed = one_hot(ctx.targets, ctx.logits.shape[1])
        seed *= ctx.logits[np.arange(len(ctx.x)), ctx.targets][:, None]
        source = graph.model_input(ctx.views.model).name
        feeds = ctx.views.score_seed(runner, seed)
        (relevance,) = runner.run(ctx.x, [backward.grad_name(source)], ctx.batch_size, feeds)
        return relevance.astype(np.float32, copy=False)
