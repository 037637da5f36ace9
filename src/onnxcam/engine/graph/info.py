"""What onnxcam reads off a model's graph, computed once per model: shape-inferred tensor specs,
producers, constants, the opset, the data input and the class-score tensor.

Shapes come from ONNX shape inference, so symbolic (`batch`) and unknown dimensions are kept
as they are and shown to the user as such. A model is not changed after its ModelInfo is made:
every rewrite (expose, split, layouts) makes a new model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, shape_inference

from onnxcam.errors import ModelError

Dim = int | str | None
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
FLOAT_NUMPY = {
    TensorProto.FLOAT: np.float32,
    TensorProto.FLOAT16: np.float16,
    TensorProto.DOUBLE: np.float64,
}
DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class TensorSpec:
    """Name, element type and shape of one tensor."""

    name: str
    elem_type: int
    shape: tuple[Dim, ...] | None


#: The batch size the batch probe fixes (a prime that no other axis is likely to be).
PROBE_BATCH = 7


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with value_info filled by shape inference (the model itself if inference fails)."""
    try:
        return shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference is best effort: a model ORT runs need not infer fully
        return model


def shape_of(value: onnx.ValueInfoProto) -> tuple[Dim, ...] | None:
    """A value's declared shape: ints, symbolic names, None where unknown."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims: list[Dim] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def tensor_specs(model: onnx.ModelProto) -> dict[str, TensorSpec]:
    """Element type and shape of every typed tensor (inputs, outputs, value_info)."""
    graph = model.graph
    return {
        value.name: TensorSpec(value.name, value.type.tensor_type.elem_type, shape_of(value))
        for value in [*graph.input, *graph.value_info, *graph.output]
    }


def type_name(elem: int) -> str:
    """An ONNX element type's name (FLOAT, INT64); a number no ONNX version defines as such."""
    known = TensorProto.DataType.DESCRIPTOR.values_by_number
    return known[elem].name if elem in known else f"type {elem}"


def numpy_dtype(elem: int) -> type:
    """The NumPy type of a float ONNX element type (float32 for anything else)."""
    return FLOAT_NUMPY.get(elem, np.float32)


def elem_type(spec: TensorSpec | None) -> int:
    """A spec's element type, float32 where it is unknown."""
    return spec.elem_type if spec is not None and spec.elem_type else TensorProto.FLOAT


def opset_version(model: onnx.ModelProto) -> int:
    """The model's version of the default ONNX domain (0 when it imports none)."""
    return next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), 0)


def has_subgraph(node: onnx.NodeProto) -> bool:
    """Whether a node carries a graph attribute (Loop, If, Scan)."""
    graph_types = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    return any(a.type in graph_types for a in node.attribute)


def refuse_subgraphs(nodes, why: str) -> None:
    """ModelError for the first node with a subgraph: `why` says what cannot take it."""
    for node in nodes:
        if has_subgraph(node):
            raise ModelError(
                f"{node.op_type} node {node.name or node.output[0]!r} has a subgraph: {why}"
            )


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes decoded to Python values."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def model_input(model: onnx.ModelProto) -> TensorSpec:
    """The data input of the model (initializers listed as inputs by old exporters are skipped)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs) or "none"
        raise ModelError(f"expected a model with one data input, got {len(inputs)}: {names}")
    value = inputs[0]
    return TensorSpec(value.name, value.type.tensor_type.elem_type, shape_of(value))


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """The node that writes each tensor."""
    return {out: node for node in model.graph.node for out in node.output if out}


def logits_tensor(model: onnx.ModelProto) -> str:
    """The class-score tensor: the first output, or the input of the Softmax that produces it."""
    writers = producers(model)
    name = model.graph.output[0].name
    node = writers.get(name)
    while node is not None and node.op_type == "Identity":
        name = node.input[0]
        node = writers.get(name)
    if node is not None and node.op_type == "Softmax":
        return node.input[0]
    return model.graph.output[0].name


class ModelInfo:
    """One model's facts, each computed on first use and kept."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model

    @cached_property
    def inferred(self) -> onnx.ModelProto:
        """The model with shape inference's value_info."""
        return infer_shapes(self.model)

    @cached_property
    def specs(self) -> dict[str, TensorSpec]:
        return tensor_specs(self.inferred)

    @cached_property
    def producers(self) -> dict[str, onnx.NodeProto]:
        return producers(self.model)

    @cached_property
    def batch_probe(self) -> dict[str, TensorSpec]:
        """Shapes inferred with the input's batch fixed at PROBE_BATCH (data propagation on),
        so that an axis 0 of PROBE_BATCH is known to follow the batch and one of 4 x
        PROBE_BATCH (Swin's windows, heads folded into the batch) known not to."""
        batch = (self.input.shape or (None,))[0]
        if isinstance(batch, int):
            return self.specs
        probe = copy.deepcopy(self.model)
        del probe.graph.value_info[:]
        for value in probe.graph.input:
            if value.name == self.input.name:
                value.type.tensor_type.shape.dim[0].Clear()
                value.type.tensor_type.shape.dim[0].dim_value = PROBE_BATCH
        return tensor_specs(infer_shapes(probe))

    @cached_property
    def constants(self) -> set[str]:
        """Initializers and outputs of Constant nodes."""
        names = {t.name for t in self.model.graph.initializer}
        return names | {n.output[0] for n in self.model.graph.node if n.op_type == "Constant"}

    @cached_property
    def constant_tensors(self) -> dict[str, onnx.TensorProto]:
        """The values of initializers and Constant nodes (value attribute), by name."""
        values = {t.name: t for t in self.model.graph.initializer}
        for node in self.model.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                values[node.output[0]] = node.attribute[0].t
        return values

    @cached_property
    def input(self) -> TensorSpec:
        return model_input(self.model)

    @cached_property
    def input_rank(self) -> int | None:
        """Rank of the data input, if the graph declares it."""
        try:
            shape = self.input.shape
        except ModelError:
            return None
        return None if shape is None else len(shape)

    @cached_property
    def logits(self) -> str:
        return logits_tensor(self.model)

    @cached_property
    def opset(self) -> int:
        return opset_version(self.model)


def info_of(model: onnx.ModelProto | ModelInfo) -> ModelInfo:
    """The ModelInfo given, or a new one for a bare model."""
    return model if isinstance(model, ModelInfo) else ModelInfo(model)
