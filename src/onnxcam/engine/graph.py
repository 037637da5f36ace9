"""Pure ModelProto work: load, list candidate layers, resolve `auto`, expose tensors as outputs.

Nothing here runs a model; shapes come from ONNX shape inference, so symbolic (`batch`, `?`)
and unknown (-1) dimensions are kept as they are and shown to the user as such.
"""

from __future__ import annotations

import ast
import copy
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from onnxcam.engine import metadata
from onnxcam.errors import LayerError, ModelError

Dim = int | str | None
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}


@dataclass(frozen=True)
class LayerInfo:
    """A tensor that can be explained: its name, producing op, inferred shape and module scope."""

    name: str
    op_type: str
    shape: tuple[Dim, ...] | None
    scope: str = ""
    auto: bool = False

    def shape_text(self) -> str:
        if self.shape is None:
            return "?"
        return "(" + ", ".join("?" if d is None else str(d) for d in self.shape) + ")"


@dataclass(frozen=True)
class TensorSpec:
    """Name, element type and shape of one graph input or output."""

    name: str
    elem_type: int
    shape: tuple[Dim, ...] | None


def load(source: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Read and check an ONNX model; a missing, unreadable or truncated file is a ModelError."""
    if isinstance(source, onnx.ModelProto):
        model = copy.deepcopy(source)
    elif isinstance(source, bytes):
        model = _parse(source, "<bytes>")
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelError(f"ONNX model not found: {path} (expected a .onnx file)")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ModelError(f"cannot read ONNX model {path}: {err.strerror}") from err
        model = _parse(data, str(path))
        if any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer):
            onnx.load_external_data_for_model(model, str(path.parent))
    _drop_initializer_inputs(model)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"invalid ONNX model: {first}") from err
    if not model.graph.output:
        raise ModelError("invalid ONNX model: the graph has no outputs")
    return model


def _drop_initializer_inputs(model: onnx.ModelProto) -> None:
    """Old exporters list weights as graph inputs too; ORT then treats them as overridable and
    some of its fusions fail once inner tensors are exposed. Weights are not inputs here."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in weights]
    if len(inputs) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(inputs)


def _parse(data: bytes, label: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as err:  # protobuf raises its own DecodeError types
        raise ModelError(
            f"cannot parse {label} as an ONNX model ({len(data)} bytes): the file is truncated "
            "or not ONNX"
        ) from err
    if not model.graph.node:
        raise ModelError(f"{label} holds no ONNX graph ({len(data)} bytes): truncated or not ONNX")
    return model


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with value_info filled by shape inference (the model itself if inference fails)."""
    try:
        return shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference is best effort: a model ORT runs need not infer fully
        return model


def _shape_of(value: onnx.ValueInfoProto) -> tuple[Dim, ...] | None:
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
    specs = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        specs[value.name] = TensorSpec(
            value.name, value.type.tensor_type.elem_type, _shape_of(value)
        )
    return specs


def model_input(model: onnx.ModelProto) -> TensorSpec:
    """The data input of the model (initializers listed as inputs by old exporters are skipped)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs) or "none"
        raise ModelError(f"expected a model with one data input, got {len(inputs)}: {names}")
    value = inputs[0]
    return TensorSpec(value.name, value.type.tensor_type.elem_type, _shape_of(value))


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output if out}


def logits_tensor(model: onnx.ModelProto) -> str:
    """The class-score tensor: the first output, or the input of the Softmax that produces it."""
    producers = _producers(model)
    name = model.graph.output[0].name
    node = producers.get(name)
    while node is not None and node.op_type == "Identity":
        name = node.input[0]
        node = producers.get(name)
    if node is not None and node.op_type == "Softmax":
        return node.input[0]
    return model.graph.output[0].name


def _is_spatial(spec: TensorSpec | None, rank: int | None = None) -> bool:
    """(N, K, T) or (N, K, H, W) float tensor whose spatial size is not known to be 1, of the
    model input's rank where that is known (a flattened (N, K, H*W) is no 2-D layer)."""
    if spec is None or spec.shape is None or spec.elem_type not in FLOAT_TYPES:
        return False
    if len(spec.shape) not in ((rank,) if rank in (3, 4) else (3, 4)):
        return False
    return not all(d == 1 for d in spec.shape[2:])


def input_rank(model: onnx.ModelProto) -> int | None:
    """Rank of the data input, if the graph declares it."""
    try:
        shape = model_input(model).shape
    except ModelError:
        return None
    return None if shape is None else len(shape)


def _scope(node: onnx.NodeProto) -> str:
    """The innermost module path the torch exporter recorded for a node, if any."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return ""
            return scopes[-2] if len(scopes) >= 2 else ""
    return ""


def auto_layer(model: onnx.ModelProto, specs: dict[str, TensorSpec]) -> str | None:
    """The last spatial tensor in front of the classifier: found walking back from the logits.

    The walk follows float tensors only (never shape arithmetic) and stops at the first tensor
    with spatial axes, which is the one that feeds the global pooling or flatten.
    """
    producers = _producers(model)
    constants = {t.name for t in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    start = logits_tensor(model)
    rank = input_rank(model)
    queue, seen = deque([start]), {start}
    while queue:
        name = queue.popleft()
        spec = specs.get(name)
        if name != start and _is_spatial(spec, rank):
            return name
        node = producers.get(name)
        if node is None or node.op_type in ("Shape", "Size"):
            continue
        for inp in node.input:
            inp_spec = specs.get(inp)
            if not inp or inp in seen or inp in constants:
                continue
            if inp_spec is not None and inp_spec.elem_type not in FLOAT_TYPES:
                continue
            seen.add(inp)
            queue.append(inp)
    return None


def list_layers(model: onnx.ModelProto) -> list[LayerInfo]:
    """Candidate target layers, best first: the `auto` pick, then the rest from the output back."""
    inferred = infer_shapes(model)
    specs = tensor_specs(inferred)
    auto = auto_layer(inferred, specs)
    rank = input_rank(model)
    layers = [
        LayerInfo(out, node.op_type, specs[out].shape, _scope(node), out == auto)
        for node in reversed(inferred.graph.node)
        for out in node.output
        if _is_spatial(specs.get(out), rank)
    ]
    layers.sort(key=lambda info: not info.auto)
    return layers


def resolve_layer(model: onnx.ModelProto, layer: str) -> str:
    """Map `auto`, a tensor name or an exported module path to a tensor name (or LayerError)."""
    layers = list_layers(model)
    if layer == "auto":
        for info in layers:
            if info.auto:
                return info.name
        if layers:
            return layers[0].name
        raise LayerError("no layer with spatial axes found in the model: name one explicitly")
    aliases = metadata.stored_layers(model)
    name = aliases.get(layer, layer)
    specs = tensor_specs(infer_shapes(model))
    known = set(_producers(model)) | {v.name for v in model.graph.input}
    if name not in known:
        shown = ", ".join(info.name for info in layers[:12])
        more = f" (and {len(layers) - 12} more)" if len(layers) > 12 else ""
        alias = f"; exported module paths: {', '.join(aliases)}" if aliases else ""
        raise LayerError(
            f"unknown layer {layer!r}; candidates: {shown or 'none'}{more}{alias}. "
            "Run `onnxcam layers MODEL` for the full list."
        )
    spec = specs.get(name)
    if spec is not None and spec.shape is not None and not _is_spatial(spec, input_rank(model)):
        raise LayerError(
            f"layer {layer!r} has shape {LayerInfo(name, '', spec.shape).shape_text()}: expected "
            "(N, K, H, W) or (N, K, T) with spatial size > 1"
        )
    return name


def expose(model: onnx.ModelProto, tensors: list[str]) -> onnx.ModelProto:
    """A copy of the model that also returns `tensors` as graph outputs."""
    exposed = copy.deepcopy(model)
    graph = exposed.graph
    specs = tensor_specs(infer_shapes(model))
    present = {o.name for o in graph.output}
    inputs = {v.name for v in graph.input}
    for name in tensors:
        if name in present:
            continue
        source = name
        if name in inputs:  # a graph input cannot also be an output: pass it through Identity
            name = f"{name}__onnxcam_exposed"
            graph.node.append(helper.make_node("Identity", [source], [name]))
        spec = specs.get(source)
        elem = spec.elem_type if spec is not None and spec.elem_type else TensorProto.FLOAT
        graph.output.append(helper.make_tensor_value_info(name, elem, None))
        present.add(name)
    return exposed


def exposed_name(model: onnx.ModelProto, tensor: str) -> str:
    """The output name under which `expose` returns `tensor`."""
    inputs = {v.name for v in model.graph.input}
    return f"{tensor}__onnxcam_exposed" if tensor in inputs else tensor


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


def split(model: onnx.ModelProto, tensor: str, outputs: list[str] | None = None) -> Split:
    """Cut the model at `tensor`; the tail computes `outputs` (default: the class scores)."""
    graph = model.graph
    outputs = outputs or [logits_tensor(model)]
    producers = _producers(model)
    needed: set[int] = set()
    index = {id(node): i for i, node in enumerate(graph.node)}
    stack = [producers[o] for o in outputs if o in producers]
    while stack:
        node = stack.pop()
        if index[id(node)] in needed:
            continue
        needed.add(index[id(node)])
        stack.extend(producers[i] for i in node.input if i in producers and i != tensor)
    tainted, tail_nodes = {tensor}, []
    for i, node in enumerate(graph.node):
        if i in needed and any(name in tainted for name in node.input):
            tail_nodes.append(node)
            tainted.update(node.output)
    missing = [o for o in outputs if o not in tainted]
    if missing:
        raise LayerError(f"cannot split at {tensor!r}: output {missing[0]!r} does not depend on it")
    initializers = {t.name: t for t in graph.initializer}
    static = static_nodes(model)
    wanted = {name for node in tail_nodes for name in node.input}
    for node in reversed([n for n in graph.node if id(n) in static]):
        if any(out in wanted for out in node.output):  # weights computed in-graph: recompute
            wanted.update(node.input)
            tail_nodes.insert(0, node)
    tail_nodes.sort(key=lambda node: index[id(node)])
    produced = {out for node in tail_nodes for out in node.output}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    reads = [name for node in tail_nodes for name in node.input if name and name not in produced]
    reads = list(dict.fromkeys(reads))
    crossing = [n for n in reads if n != tensor and n not in initializers and n not in constants]
    specs = tensor_specs(infer_shapes(model))
    for name in crossing:
        spec = specs.get(name)
        if spec is None or spec.elem_type not in FLOAT_TYPES or spec.shape is None:
            raise LayerError(
                f"cannot split at {tensor!r}: the tail reads {name!r}, computed before the cut "
                "and not a float activation with a known shape"
            )
    inputs = [_batch_input(name, specs.get(name)) for name in (tensor, *crossing)]
    tail_graph = helper.make_graph(
        [constants[n] for n in reads if n in constants] + tail_nodes,
        f"{graph.name}_tail",
        inputs,
        [helper.make_tensor_value_info(o, _elem(specs.get(o)), None) for o in outputs],
        [initializers[n] for n in reads if n in initializers],
    )
    tail = helper.make_model(
        tail_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
    return Split(tail, tensor, tuple(crossing), tuple(outputs))


def static_nodes(model: onnx.ModelProto) -> set[int]:
    """ids of nodes computed from weights and constants only (no batch axis)."""
    known = {t.name for t in model.graph.initializer}
    static = set()
    for node in model.graph.node:
        if node.op_type != "Constant" and all(not i or i in known for i in node.input):
            static.add(id(node))
            known.update(node.output)
        elif node.op_type == "Constant":
            known.update(node.output)
    return static


def _elem(spec: TensorSpec | None) -> int:
    return spec.elem_type if spec is not None and spec.elem_type else TensorProto.FLOAT


def _batch_input(name: str, spec: TensorSpec | None) -> onnx.ValueInfoProto:
    """A tail input with a free batch axis (the tail runs on batches of perturbed activations)."""
    shape = None if spec is None or spec.shape is None else ["N", *spec.shape[1:]]
    return helper.make_tensor_value_info(name, _elem(spec), shape)


CHANNEL_SCALE = "onnxcam_channel_scale"


def scale_channels(model: onnx.ModelProto, tensor: str, scale_input: str) -> onnx.ModelProto:
    """A copy whose consumers of `tensor` read tensor * scale, scale a new (N, K) graph input.

    A graph output named `tensor` keeps the unscaled value.
    """
    scaled = copy.deepcopy(model)
    graph = scaled.graph
    spec = tensor_specs(infer_shapes(model)).get(tensor)
    rank = len(spec.shape) if spec is not None and spec.shape is not None else 4
    target = f"{tensor}__scaled"
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == tensor:
                node.input[i] = target
    shape = numpy_helper.from_array(
        np.array([0, -1] + [1] * (rank - 2), dtype=np.int64), f"{target}_shape"
    )
    graph.initializer.append(shape)
    producer_index = max(
        (i for i, node in enumerate(graph.node) if tensor in node.output), default=-1
    )
    new_nodes = [
        helper.make_node("Reshape", [scale_input, shape.name], [f"{target}_factor"]),
        helper.make_node("Mul", [tensor, f"{target}_factor"], [target]),
    ]
    for offset, node in enumerate(new_nodes, start=1):
        graph.node.insert(producer_index + offset, node)
    channels = None if spec is None or spec.shape is None else spec.shape[1]
    graph.input.append(helper.make_tensor_value_info(scale_input, _elem(spec), ["N", channels]))
    return scaled
