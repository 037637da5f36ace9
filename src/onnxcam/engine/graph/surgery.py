"""Rewriting a model: expose inner tensors as outputs, cut it at a tensor (head and tail), scale
a layer's channels by an extra input, and find the nodes that given outputs depend on.

Each function returns a new model and leaves its argument unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper, version_converter

from onnxcam.engine.graph.info import (
    FLOAT_TYPES,
    PROBE_BATCH,
    ModelInfo,
    TensorSpec,
    attributes,
    elem_type,
    info_of,
    model_input,
    opset_version,
)
from onnxcam.errors import LayerError, ModelError

CHANNEL_SCALE = "onnxcam_channel_scale"
EXPOSED_SUFFIX = "__onnxcam_exposed"


def exposed_name(model: onnx.ModelProto | ModelInfo, tensor: str) -> str:
    """The output name under which `expose` returns `tensor` (a graph input gets a suffix)."""
    inputs = {v.name for v in info_of(model).model.graph.input}
    return f"{tensor}{EXPOSED_SUFFIX}" if tensor in inputs else tensor


def expose(model: onnx.ModelProto | ModelInfo, tensors: Sequence[str]) -> onnx.ModelProto:
    """A copy of the model that also returns `tensors` as graph outputs."""
    info = info_of(model)
    exposed = copy.deepcopy(info.model)
    graph = exposed.graph
    present = {o.name for o in graph.output}
    for source in tensors:
        name = exposed_name(info, source)
        if name in present:
            continue
        if name != source:  # a graph input cannot also be an output: pass it through Identity
            graph.node.append(helper.make_node("Identity", [source], [name]))
        graph.output.append(
            helper.make_tensor_value_info(name, elem_type(info.specs.get(source)), None)
        )
        present.add(name)
    return exposed


def needed_indices(
    nodes: Sequence[onnx.NodeProto], outputs: Sequence[str], stop: str = ""
) -> list[int]:
    """Positions of the nodes that `outputs` depend on, in graph order; the walk does not go
    past `stop`. (Positions, not node objects: protobuf hands out a new wrapper per access.)"""
    producers = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    needed: set[int] = set()
    stack = [producers[o] for o in outputs if o in producers]
    while stack:
        i = stack.pop()
        if i not in needed:
            needed.add(i)
            stack.extend(producers[n] for n in nodes[i].input if n in producers and n != stop)
    return sorted(needed)


def needed_nodes(nodes: Sequence[onnx.NodeProto], outputs: Sequence[str]) -> list:
    """The nodes that `outputs` depend on, in graph order."""
    return [nodes[i] for i in needed_indices(nodes, outputs)]


def static_nodes(model: onnx.ModelProto) -> set[int]:
    """Positions of the nodes computed from weights and constants only (no batch axis)."""
    known = {t.name for t in model.graph.initializer}
    static = set()
    for i, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            known.update(node.output)
        elif all(not name or name in known for name in node.input):
            static.add(i)
            known.update(node.output)
    return static


@dataclass(frozen=True)
class Split:
    """A model cut at `tensor`: the tail maps (tensor, *crossing) to the class scores.

    `crossing` are tensors computed before the cut that the tail still reads (skip connections
    around it); the head computes them once and they are fed to the tail with the activation.
    """

    tail: onnx.ModelProto
    tensor: str
    crossing: tuple[str, ...]
    outputs: tuple[str, ...]


def batch_input(name: str, spec: TensorSpec | None) -> onnx.ValueInfoProto:
    """A graph input with a free batch axis (tails and seeds run on batches of any size)."""
    shape = None if spec is None or spec.shape is None else ["N", *spec.shape[1:]]
    return helper.make_tensor_value_info(name, elem_type(spec), shape)


def split(
    model: onnx.ModelProto | ModelInfo, tensor: str, outputs: Sequence[str] | None = None
) -> Split:
    """Cut the model at `tensor`; the tail computes `outputs` (default: the class scores)."""
    info = info_of(model)
    graph = info.model.graph
    outputs = list(outputs or [info.logits])
    nodes = list(graph.node)
    needed = set(needed_indices(nodes, outputs, stop=tensor))
    tainted, tail = {tensor}, []
    for i, node in enumerate(nodes):
        if i in needed and any(name in tainted for name in node.input):
            tail.append(i)
            tainted.update(node.output)
    missing = [o for o in outputs if o not in tainted]
    if missing:
        raise LayerError(f"cannot split at {tensor!r}: output {missing[0]!r} does not depend on it")
    initializers = {t.name: t for t in graph.initializer}
    wanted = {name for i in tail for name in nodes[i].input}
    for i in sorted(static_nodes(info.model), reverse=True):
        if any(out in wanted for out in nodes[i].output):  # weights computed in-graph: recompute
            wanted.update(nodes[i].input)
            tail.append(i)
    tail_nodes = _with_shape_arithmetic(info, nodes, sorted(tail), tensor)
    produced = {out for node in tail_nodes for out in node.output}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    reads = [name for node in tail_nodes for name in node.input if name and name not in produced]
    reads = list(dict.fromkeys(reads))
    crossing = [n for n in reads if n != tensor and n not in initializers and n not in constants]
    for name in crossing:
        spec = info.specs.get(name)
        if spec is None or spec.elem_type not in FLOAT_TYPES or spec.shape is None:
            raise LayerError(
                f"cannot split at {tensor!r}: the tail reads {name!r}, computed before the cut "
                "and not a float activation with a known shape"
            )
    inputs = [batch_input(name, info.specs.get(name)) for name in (tensor, *crossing)]
    tail_graph = helper.make_graph(
        [constants[n] for n in reads if n in constants] + tail_nodes,
        f"{graph.name}_tail",
        inputs,
        [helper.make_tensor_value_info(o, elem_type(info.specs.get(o)), None) for o in outputs],
        [initializers[n] for n in reads if n in initializers],
    )
    tail = helper.make_model(
        tail_graph, opset_imports=list(info.model.opset_import), ir_version=info.model.ir_version
    )
    return Split(tail, tensor, tuple(crossing), tuple(outputs))


def _with_shape_arithmetic(
    info: ModelInfo, nodes: list[onnx.NodeProto], tail: list[int], cut: str
) -> list[onnx.NodeProto]:
    """The tail's nodes plus those that compute, from shapes alone, what the tail reads
    (indices that follow the batch size, as torch's as_strided writes; a detector head's
    reshape sizes and anchor grids): the shape of a tensor computed before the cut is, in the
    tail, the cut tensor's batch size with that tensor's other axes, which must be fixed.
    `nodes` are the model's, `tail` the positions of the tail's among them."""
    producers = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    in_tail = set(tail)
    produced = {out for i in tail for out in nodes[i].output}
    batch_dim = None if info.input.shape is None else info.input.shape[0]
    lead = batch_dim if isinstance(batch_dim, int) else PROBE_BATCH

    def known_size(name: str) -> tuple[int, ...] | None:
        """A tensor's axes after the batch, where its axis 0 follows the batch (as inference
        with the batch fixed at PROBE_BATCH tells) and the rest are fixed."""
        spec = info.batch_probe.get(name)
        shape = None if spec is None else spec.shape
        if not shape or shape[0] != lead:
            return None
        rest = tuple(shape[1:])
        return rest if all(isinstance(d, int) for d in rest) else None

    shape_only: dict[str, bool] = {}  # computed from fixed shapes and constants alone

    def from_shapes(name: str) -> bool:
        stack = [name]
        while stack:
            top = stack[-1]
            if top in shape_only:
                stack.pop()
                continue
            i = producers.get(top)
            if i is None:
                shape_only[top] = top != info.input.name
                stack.pop()
                continue
            node = nodes[i]
            if node.op_type == "Shape" and node.input[0] not in shape_only:
                stack.append(node.input[0])
                continue
            if node.op_type == "Shape":  # of a shape-only tensor: recomputed as it is
                source = node.input[0]
                shape_only[top] = shape_only[source] or known_size(source) is not None
                stack.pop()
                continue
            pending = [n for n in node.input if n and n not in shape_only]
            if pending:
                stack.extend(pending)
                continue
            shape_only[top] = all(shape_only[n] for n in node.input if n)
            stack.pop()
        return shape_only[name]

    def replaced(node: onnx.NodeProto) -> bool:
        """A Shape of an activation before the cut: read off the cut's batch size."""
        return node.op_type == "Shape" and not shape_only.get(node.input[0], False)

    wanted = [
        name
        for i in tail
        for name in nodes[i].input
        if name and name not in produced and name != cut and name in producers
    ]
    added: set[int] = set()
    stack = [producers[name] for name in wanted if from_shapes(name)]
    while stack:
        i = stack.pop()
        if i in added or i in in_tail:
            continue
        added.add(i)
        if not replaced(nodes[i]):
            stack.extend(producers[n] for n in nodes[i].input if n in producers)
    if not any(replaced(nodes[i]) for i in added):  # constants only: no shape to read off
        return [nodes[i] for i in sorted(in_tail | added)]
    prefix = f"{cut}__onnxcam_shape"
    batch = f"{prefix}_batch"

    def ints(name: str, values) -> onnx.NodeProto:
        value = numpy_helper.from_array(np.array(values, np.int64))
        return helper.make_node("Constant", [], [name], value=value)

    prologue = [
        helper.make_node("Shape", [cut], [f"{prefix}_cut"]),
        ints(f"{prefix}_0", [0]),
        ints(f"{prefix}_1", [1]),
        helper.make_node("Slice", [f"{prefix}_cut", f"{prefix}_0", f"{prefix}_1"], [batch]),
    ]
    placed = [(i, [nodes[i]]) for i in tail]  # graph order kept
    shapes: dict[str, str] = {}  # tensor before the cut -> the name of its shape in the tail
    for i in sorted(added):
        node = nodes[i]
        if not replaced(node):
            placed.append((i, [node]))
            continue
        source = node.input[0]
        if source not in shapes:
            shapes[source] = whole = f"{prefix}_of_{len(shapes)}"
            prologue.append(ints(f"{whole}_fixed", list(known_size(source))))
            prologue.append(helper.make_node("Concat", [batch, f"{whole}_fixed"], [whole], axis=0))
        rank = len(info.batch_probe[source].shape)
        start = attributes(node).get("start", 0)
        end = attributes(node).get("end", rank)
        bounds = [f"{node.output[0]}__from", f"{node.output[0]}__to"]
        sliced = [ints(name, [value]) for name, value in zip(bounds, (start, end), strict=True)]
        sliced.append(helper.make_node("Slice", [shapes[source], *bounds], [node.output[0]]))
        placed.append((i, sliced))
    placed.sort(key=lambda item: item[0])
    return prologue + [node for _, group in placed for node in group]


def read_through(
    g: onnx.GraphProto, tensor: str, nodes: Sequence[onnx.NodeProto], replacement: str
) -> None:
    """Make the graph's readers of `tensor` read `replacement`, which `nodes` compute from it,
    and put `nodes` right after `tensor`'s producer (first where a graph input is read): a
    view of a tensor (a transposed or re-gridded twin) that the rest of the graph goes
    through, so that its gradient and its perturbations reach the model."""
    for node in g.node:
        node.input[:] = [replacement if name == tensor else name for name in node.input]
    at = max((i for i, node in enumerate(g.node) if tensor in node.output), default=-1) + 1
    for offset, node in enumerate(nodes):
        g.node.insert(at + offset, node)


def scale_channels(
    model: onnx.ModelProto | ModelInfo, tensor: str, scale_input: str = CHANNEL_SCALE
) -> onnx.ModelProto:
    """A copy whose consumers of `tensor` read tensor * scale, scale a new (N, K) graph input.

    A graph output named `tensor` keeps the unscaled value.
    """
    info = info_of(model)
    scaled = copy.deepcopy(info.model)
    graph = scaled.graph
    spec = info.specs.get(tensor)
    rank = len(spec.shape) if spec is not None and spec.shape is not None else 4
    target = f"{tensor}__scaled"
    shape = numpy_helper.from_array(
        np.array([0, -1] + [1] * (rank - 2), dtype=np.int64), f"{target}_shape"
    )
    graph.initializer.append(shape)
    new_nodes = [
        helper.make_node("Reshape", [scale_input, shape.name], [f"{target}_factor"]),
        helper.make_node("Mul", [tensor, f"{target}_factor"], [target]),
    ]
    read_through(graph, tensor, new_nodes, target)
    channels = None if spec is None or spec.shape is None else spec.shape[1]
    graph.input.append(helper.make_tensor_value_info(scale_input, elem_type(spec), ["N", channels]))
    return scaled


def with_input_size(model: onnx.ModelProto, shape: Sequence[int]) -> onnx.ModelProto:
    """The model with the free axes after the batch of its data input fixed to `shape`
    ((N, C, *S); the batch stays free), its inferred shapes dropped (the model itself when
    no axis is free)."""
    name = model_input(model).name
    value = next(v for v in model.graph.input if v.name == name)
    dims = value.type.tensor_type.shape.dim
    if all(d.HasField("dim_value") and d.dim_value > 0 for d in list(dims)[1:]):
        return model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    del fixed.graph.value_info[:]
    value = next(v for v in fixed.graph.input if v.name == name)
    for dim, size in zip(list(value.type.tensor_type.shape.dim)[1:], shape[1:], strict=False):
        dim.Clear()
        dim.dim_value = int(size)
    return fixed


def at_least_opset(model: onnx.ModelProto, version: int, needed_by: str) -> onnx.ModelProto:
    """The model converted to opset `version` where it is older; `needed_by` names what needs
    that opset, for the error when the conversion fails."""
    current = opset_version(model)
    if current >= version:
        return model
    try:
        return version_converter.convert_version(model, version)
    except Exception as err:  # the converter raises plain RuntimeErrors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"the model uses opset {current}; {needed_by} need opset >= {version} and "
            f"converting failed: {first}"
        ) from err


#: Ops that the backward sweep meets as their ONNX function body (ONNX's own definition).
INLINED_OPS = ("Attention",)


def inline_function_ops(
    model: onnx.ModelProto, ops: Sequence[str] = INLINED_OPS
) -> onnx.ModelProto:
    """A copy with each node of `ops` replaced by the nodes of its ONNX function body (the
    standard's own definition, built for the node's inputs and types), so that rules for the
    plain ops it is made of apply: the fused Attention of opset 23 becomes MatMul, Softmax and
    MatMul. The model itself when it has none."""
    if not any(node.op_type in ops and node.domain in ("", "ai.onnx") for node in model.graph.node):
        return model
    info = info_of(model)
    model = copy.deepcopy(model)
    nodes = []
    for index, node in enumerate(model.graph.node):
        if node.op_type not in ops or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        nodes.extend(_function_body(info, node, f"onnxcam_inlined_{index}/"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _function_body(info: ModelInfo, node: onnx.NodeProto, prefix: str) -> list[onnx.NodeProto]:
    schema = onnx.defs.get_schema(node.op_type, info.opset, node.domain)
    types = []
    for name in node.input:
        spec = info.specs.get(name) if name else None
        shape = None if spec is None or spec.shape is None else list(spec.shape)
        types.append(helper.make_tensor_type_proto(elem_type(spec), shape).SerializeToString())
    function = onnx.FunctionProto()
    function.ParseFromString(schema.get_context_dependent_function(node.SerializeToString(), types))
    names = dict(zip(function.input, node.input, strict=False))
    names.update(zip(function.output, node.output, strict=False))
    body = []
    for position, inner in enumerate(function.node):
        copied = onnx.NodeProto()
        copied.CopyFrom(inner)
        copied.name = f"{prefix}{position}_{inner.name or inner.op_type}"
        for field in (copied.input, copied.output):
            for i, name in enumerate(field):
                field[i] = names.get(name, prefix + name) if name else ""
        body.append(copied)
    return body


def unshare_weights(model: onnx.ModelProto, op_type: str) -> onnx.ModelProto:
    """The model with each `op_type` node's initializer inputs that other nodes also read
    replaced by copies of their own (the same model when there are none). OpenVINO rewrites a
    ConvTranspose's weights in place, so a Conv that reads the same initializer (a backward
    graph's gradient beside its forward convolution) computes with them transposed."""
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    initializers = {t.name: t for t in model.graph.initializer}
    shared = {
        name
        for node in model.graph.node
        if node.op_type == op_type
        for name in node.input
        if name in initializers and readers[name] > 1
    }
    if not shared:
        return model
    result = copy.deepcopy(model)
    for node in result.graph.node:
        if node.op_type != op_type:
            continue
        for i, name in enumerate(node.input):
            if name in shared:
                own = copy.deepcopy(initializers[name])
                own.name = f"{name}__onnxcam_{op_type.lower()}_{len(result.graph.initializer)}"
                result.graph.initializer.append(own)
                node.input[i] = own.name
    return result
