"""Where a method's graph is built: the builder, the model's tensors it reads, and the layer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import onnx

from onnxcam.engine import graph
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.graph.pooling import SpatialMean, after_spatial_mean
from onnxcam.serving.explainer.blocks import Forward, repeat_items
from onnxcam.serving.explainer.heads import Head


@dataclass
class Site:
    """x: the input; acts: the layer (N, K, h, w); head: the explained output read as
    (N, classes) scores (heads.py); targets: (N,) the explained class; size_hw: the input's
    (H, W) as a tensor; chunk: perturbations per Loop step; classes: the number of classes
    where every class is explained (then a row of the scores and maps is an (image, class)
    pair, image-major), else None."""

    b: NodeBuilder
    info: graph.ModelInfo
    x: str
    acts: str
    head: Head
    targets: str
    size_hw: str
    layer_shape: tuple[int, int, int]
    chunk: int
    classes: int | None = None

    @property
    def picked(self) -> str | None:
        """What `blocks.pick_items` reads: the targets, or None for every class."""
        return None if self.classes is not None else self.targets

    def per_row(self, t: str) -> str:
        """A per-image tensor (N, ...) as one per row: repeated per class for every class."""
        return t if self.classes is None else repeat_items(self.b, t, self.classes)

    @property
    def output(self) -> str:
        """The tensor the head reads (the class scores before a final Softmax)."""
        return self.head.source

    def row_scores(self) -> str:
        """(rows, 1) unperturbed score of each row's class."""
        base = self.head.base
        if self.classes is not None:
            return self.b.reshape(base, [[-1, 1]])
        index = self.b.reshape(self.targets, [[-1, 1]])
        return self.b.reshape(self.b.op("GatherElements", [base, index], axis=1), [[-1, 1]])

    @property
    def model(self) -> onnx.ModelProto:
        return self.info.model

    def full_forward(self) -> Forward:
        """The whole model, input -> scores, for a Loop body."""
        nodes = graph.needed_nodes(self.model.graph.node, [self.output])
        return Forward(nodes, [self.x], self.output, self.head.score)

    @cached_property
    def cut(self) -> graph.Split:
        return graph.split(self.info, self.acts, [self.output])

    def tail_forward(self) -> Forward:
        """The graph's tail, (layer, crossing tensors) -> scores, for a Loop body."""
        return Forward(
            list(self.cut.tail.graph.node),
            [self.acts, *self.cut.crossing],
            self.output,
            self.head.score,
        )

    @cached_property
    def _pool(self) -> tuple[SpatialMean, graph.Split] | None:
        rank = 1 + len(self.layer_shape)  # (N, K, h, w)
        return after_spatial_mean(self.info, self.cut, rank, [self.output])

    @property
    def pooled(self) -> SpatialMean | None:
        """The global average pool the tail starts with, if it reads the layer through
        nothing else (graph/pooling.py): the tail methods then run only the graph after it."""
        return None if self._pool is None else self._pool[0]

    def mean_of(self, t: str) -> str:
        """t's mean over its positions, kept as the pool keeps it ((N, K, 1, 1) or (N, K))."""
        return self.b.reduce("ReduceMean", t, [2, 3], keepdims=self.pooled.keepdims)

    def pooled_forward(self) -> Forward:
        """The graph after the tail's pool, (means) -> scores, for a Loop body."""
        mean, after = self._pool
        return Forward(list(after.tail.graph.node), [mean.output], self.output, self.head.score)
