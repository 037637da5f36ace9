"""Whether a cut's tail begins by averaging the cut tensor over all its positions.

Most CNN classifiers read their last feature map only through a global average pool. A
perturbation of that map whose mean is known without the map (an ablated channel averages to
the value it was set to; a map that is zero but at one position averages to that position's
vector over the number of positions) can then be averaged first, and only the graph after the
pool runs: on (K,) vectors instead of (K, *s) maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from onnxcam.engine.graph.info import ModelInfo, attributes
from onnxcam.engine.graph.surgery import Split, split
from onnxcam.errors import LayerError


@dataclass(frozen=True)
class SpatialMean:
    """The node that averages the cut tensor over every position: its output and whether it
    keeps the averaged axes (as size 1)."""

    output: str
    keepdims: bool

    def of(self, activations: np.ndarray) -> np.ndarray:
        """What the node computes from (N, K, *s) activations, summed in float64."""
        axes = tuple(range(2, activations.ndim))
        mean = activations.mean(axis=axes, keepdims=self.keepdims, dtype=np.float64)
        return mean.astype(activations.dtype)


def spatial_mean(split: Split, rank: int | None) -> SpatialMean | None:
    """The tail's only reader of the cut tensor's values when it is a GlobalAveragePool or a
    ReduceMean over all spatial axes, and nothing else crosses the cut; otherwise None. (A
    Shape of the cut tensor reads no values: the batch size it gives is the means'.)"""
    if split.crossing or rank is None or rank < 3:
        return None
    readers = [
        node
        for node in split.tail.graph.node
        if split.tensor in node.input and node.op_type != "Shape"
    ]
    if len(readers) != 1:
        return None
    node = readers[0]
    if node.op_type == "GlobalAveragePool":
        return SpatialMean(node.output[0], keepdims=True)
    if node.op_type != "ReduceMean":
        return None
    attrs = attributes(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = _constant(split.tail.graph, node.input[1])
    if axes is None or {int(a) % rank for a in axes} != set(range(2, rank)):
        return None
    return SpatialMean(node.output[0], keepdims=bool(attrs.get("keepdims", 1)))


def after_spatial_mean(
    info: ModelInfo, cut: Split, rank: int | None, outputs: list[str]
) -> tuple[SpatialMean, Split] | None:
    """The tail's spatial mean (`spatial_mean`) and the model cut at its output, or None (no
    such mean, or a graph after it that reads sizes which are not fixed)."""
    mean = spatial_mean(cut, rank)
    if mean is None:
        return None
    try:
        return mean, split(info, mean.output, outputs)
    except LayerError:
        return None


def _constant(g: onnx.GraphProto, name: str) -> list[int] | None:
    """The integer values of an initializer or Constant node named `name`, if there is one."""
    for tensor in g.initializer:
        if tensor.name == name:
            return numpy_helper.to_array(tensor).reshape(-1).tolist()
    for node in g.node:
        if node.op_type == "Constant" and node.output[0] == name and node.attribute:
            return numpy_helper.to_array(node.attribute[0].t).reshape(-1).tolist()
    return None
