"""Where a method's graph is built: the builder, the model's tensors it reads, and the layer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import onnx

from onnxcam.engine import graph
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.serving.explainer.blocks import Forward, repeat_items


@dataclass
class Site:
    """x: the input; acts: the layer (N, K, h, w); logits: (N, classes); targets: (N,) the
    explained class; size_hw: the input's (H, W) as a tensor; chunk: perturbations per Loop
    step; classes: the number of classes where every class is explained (then a row of the
    scores and maps is an (image, class) pair, image-major), else None."""

    b: NodeBuilder
    info: graph.ModelInfo
    x: str
    acts: str
    logits: str
    targets: str
    size_hw: str
    layer_shape: tuple[int, int, int]
    chunk: int
    classes: int | None = None

    @property
    def picked(self) -> str | None:
        """What `blocks.pick` reads: the targets, or None for every class."""
        return None if self.classes is not None else self.targets

    def per_row(self, t: str) -> str:
        """A per-image tensor (N, ...) as one per row: repeated per class for every class."""
        return t if self.classes is None else repeat_items(self.b, t, self.classes)

    def row_scores(self) -> str:
        """(rows, 1) unperturbed score of each row's class."""
        if self.classes is not None:
            return self.b.reshape(self.logits, [[-1, 1]])
        index = self.b.reshape(self.targets, [[-1, 1]])
        return self.b.reshape(self.b.op("GatherElements", [self.logits, index], axis=1), [[-1, 1]])

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
