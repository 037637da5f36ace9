"""Channels-last models (Keras's (N, T, C) and (N, H, W, C)) explained channels-first.

The exporters record a model's layout in its metadata (`onnxcam.layout`); an Explainer can also
be told it. For a channels-last model the Explainer rewrites the graph once: the data input
takes (N, C, *S) and an in-graph Transpose hands the model its own layout, and the target layer
gets a channels-first twin (N, K, *s) from which the rest of the graph reads the original back
through the inverse Transpose. Every method, kernel and graph view (expose, split, channel
scaling) then sees channels-first tensors only, so none of them knows about layouts.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import helper

from onnxcam.engine.graph import model_input, read_through
from onnxcam.errors import ArgumentError, InputError, ModelError

CHANNELS_FIRST = "channels_first"
CHANNELS_LAST = "channels_last"
LAYOUTS = (CHANNELS_FIRST, CHANNELS_LAST)


def check_layout(layout: str | None) -> str:
    """A layout name checked; None means channels_first."""
    if layout is None:
        return CHANNELS_FIRST
    if layout not in LAYOUTS:
        raise ArgumentError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return layout


#: Ops that read axis 1 as channels: a channels-last input reaches none of them untransposed.
CHANNEL_AXIS_OPS = {
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "InstanceNormalization",
    "LRN",
}


def channels_first_reader(model: onnx.ModelProto) -> onnx.NodeProto | None:
    """The first node that reads the data input's axis 1 as channels without a Transpose on
    the way (None where every such path goes through a Transpose)."""
    data = model_input(model).name
    reached = {data}
    for node in model.graph.node:
        if node.op_type == "Transpose" or not any(name in reached for name in node.input):
            continue
        if node.op_type in CHANNEL_AXIS_OPS and node.input[0] in reached:
            return node
        reached.update(node.output)
    return None


def check_against_graph(model: onnx.ModelProto, layout: str) -> None:
    """Refuse channels_last for a graph that reads its input channels-first."""
    if layout != CHANNELS_LAST:
        return
    reader = channels_first_reader(model)
    if reader is not None:
        raise ModelError(
            f"the model is said to be channels_last, but its input feeds {reader.op_type} node "
            f"{reader.name or reader.output[0]!r} untransposed, which reads axis 1 as "
            "channels: expected channels_first (check the metadata or input_layout)"
        )


def last_to_first(rank: int) -> list[int]:
    """Transpose permutation (N, *S, C) -> (N, C, *S)."""
    return [0, rank - 1, *range(1, rank - 1)]


def first_to_last(rank: int) -> list[int]:
    """Transpose permutation (N, C, *S) -> (N, *S, C)."""
    return [0, *range(2, rank), 1]


def to_channels_first(x: np.ndarray, layout: str) -> np.ndarray:
    """A batch in the model's layout as a contiguous channels-first array."""
    if layout == CHANNELS_FIRST:
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(x.transpose(last_to_first(x.ndim)))


def channels_first_shape(shape: tuple | None, layout: str) -> tuple | None:
    """A model input shape as (N, C, *S) whatever the model's layout."""
    if shape is None or layout == CHANNELS_FIRST:
        return shape
    return tuple(shape[i] for i in last_to_first(len(shape)))


def _rank(model: onnx.ModelProto) -> int:
    shape = model_input(model).shape
    if shape is None or len(shape) not in (3, 4):
        raise InputError(
            f"a channels-last model needs an input of rank 3 (N, T, C) or 4 (N, H, W, C), "
            f"got shape {shape}"
        )
    return len(shape)


def channels_first(model: onnx.ModelProto, layer: str) -> tuple[onnx.ModelProto, str]:
    """A copy of a channels-last model that takes (N, C, *S), and its channels-first layer.

    Returns the rewritten model and the name of the layer's (N, K, *s) twin.
    """
    rank = _rank(model)
    rewritten = copy.deepcopy(model)
    graph = rewritten.graph
    data = model_input(rewritten).name
    native = f"{data}__channels_last"
    to_model = helper.make_node("Transpose", [data], [native], perm=first_to_last(rank))
    read_through(graph, data, [to_model], native)
    value = next(v for v in graph.input if v.name == data)
    dims = list(value.type.tensor_type.shape.dim)
    order = [copy.deepcopy(dims[i]) for i in last_to_first(rank)]
    del value.type.tensor_type.shape.dim[:]
    value.type.tensor_type.shape.dim.extend(order)
    if layer == data:
        return rewritten, data
    twin, back = f"{layer}__channels_first", f"{layer}__channels_last"
    nodes = [
        helper.make_node("Transpose", [layer], [twin], perm=last_to_first(rank)),
        helper.make_node("Transpose", [twin], [back], perm=first_to_last(rank)),
    ]
    read_through(graph, layer, nodes, back)
    return rewritten, twin
