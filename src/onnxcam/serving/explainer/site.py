"""Where a method's graph is built: the builder, the model's tensors it reads, and the layer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import onnx

from onnxcam.engine import graph
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.serving.explainer.blocks import Forward


@dataclass
class Site:
    """x: the input; acts: the layer (N, K, h, w); logits: (N, classes); targets: (N,) the top
    class; size_hw: the input's (H, W) as a tensor; chunk: perturbations per Loop step."""

    b: NodeBuilder
    info: graph.ModelInfo
    x: str
    acts: str
    logits: str
    targets: str
    size_hw: str
    layer_shape: tuple[int, int, int]
    chunk: int

    @property
    def model(self) -> onnx.ModelProto:
        return self.info.model

    def full_forward(self) -> Forward:
        """The whole model, input -> class scores, for a Loop body."""
        nodes = graph.needed_nodes(self.model.graph.node, [self.info.logits])
        return Forward(nodes, [self.x], self.info.logits)

    @cached_property
    def cut(self) -> graph.Split:
        return graph.split(self.info, self.acts, [self.info.logits])

    def tail_forward(self) -> Forward:
        """The graph's tail, (layer, crossing tensors) -> class scores, for a Loop body."""
        return Forward(
            list(self.cut.tail.graph.node), [self.acts, *self.cut.crossing], self.info.logits
        )
