"""Which tensors can be explained: candidates, the `auto` pick, and names given by the user.

A candidate is an (N, K, H, W) or (N, K, T) float tensor whose spatial size is not 1, of the
data input's rank where that is known. `auto` walks back from the class scores along float
tensors and stops at the first candidate: the one that feeds the global pooling or flatten.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass

import onnx

from onnxcam.engine import metadata
from onnxcam.engine.graph.info import FLOAT_TYPES, Dim, ModelInfo, TensorSpec, info_of
from onnxcam.errors import LayerError

#: Node metadata in which torch's dynamo exporter records module paths.
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


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


def is_spatial(spec: TensorSpec | None, rank: int | None = None) -> bool:
    """(N, K, T) or (N, K, H, W) float tensor whose spatial size is not known to be 1, of the
    model input's rank where that is known (a flattened (N, K, H*W) is no 2-D layer)."""
    if spec is None or spec.shape is None or spec.elem_type not in FLOAT_TYPES:
        return False
    if len(spec.shape) not in ((rank,) if rank in (3, 4) else (3, 4)):
        return False
    return not all(d == 1 for d in spec.shape[2:])


def scope(node: onnx.NodeProto) -> str:
    """The innermost module path the torch exporter recorded for a node, if any."""
    for prop in node.metadata_props:
        if prop.key == NAME_SCOPES_KEY:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
                return ""
            ok = isinstance(scopes, (list, tuple)) and all(isinstance(s, str) for s in scopes)
            return scopes[-2] if ok and len(scopes) >= 2 else ""
    return ""


def auto_layer(info: ModelInfo) -> str | None:
    """The last spatial tensor in front of the classifier: found walking back from the logits.

    The walk follows float tensors only (never shape arithmetic) and stops at the first tensor
    with spatial axes, which is the one that feeds the global pooling or flatten.
    """
    specs, start = info.specs, info.logits
    queue, seen = deque([start]), {start}
    while queue:
        name = queue.popleft()
        if name != start and is_spatial(specs.get(name), info.input_rank):
            return name
        node = info.producers.get(name)
        if node is None or node.op_type in ("Shape", "Size"):
            continue
        for inp in node.input:
            spec = specs.get(inp)
            if not inp or inp in seen or inp in info.constants:
                continue
            if spec is not None and spec.elem_type not in FLOAT_TYPES:
                continue
            seen.add(inp)
            queue.append(inp)
    return None


def list_layers(model: onnx.ModelProto | ModelInfo) -> list[LayerInfo]:
    """Candidate target layers, best first: the `auto` pick, then the rest from the output back."""
    info = info_of(model)
    auto = auto_layer(info)
    layers = [
        LayerInfo(out, node.op_type, info.specs[out].shape, scope(node), out == auto)
        for node in reversed(info.inferred.graph.node)
        for out in node.output
        if is_spatial(info.specs.get(out), info.input_rank)
    ]
    layers.sort(key=lambda layer: not layer.auto)
    return layers


def resolve_layer(model: onnx.ModelProto | ModelInfo, layer: str) -> str:
    """Map `auto`, a tensor name or an exported module path to a tensor name (or LayerError)."""
    info = info_of(model)
    layers = list_layers(info)
    if layer == "auto":
        for candidate in layers:
            if candidate.auto:
                return candidate.name
        if layers:
            return layers[0].name
        raise LayerError("no layer with spatial axes found in the model: name one explicitly")
    aliases = metadata.stored_layers(info.model)
    name = aliases.get(layer, layer)
    known = set(info.producers) | {v.name for v in info.model.graph.input}
    if name not in known:
        shown = ", ".join(candidate.name for candidate in layers[:12])
        more = f" (and {len(layers) - 12} more)" if len(layers) > 12 else ""
        alias = f"; exported module paths: {', '.join(aliases)}" if aliases else ""
        raise LayerError(
            f"unknown layer {layer!r}; candidates: {shown or 'none'}{more}{alias}. "
            "Run `onnxcam layers MODEL` for the full list."
        )
    spec = info.specs.get(name)
    if spec is not None and spec.shape is not None and not is_spatial(spec, info.input_rank):
        raise LayerError(
            f"layer {layer!r} has shape {LayerInfo(name, '', spec.shape).shape_text()}: expected "
            "(N, K, H, W) or (N, K, T) with spatial size > 1"
        )
    return name
