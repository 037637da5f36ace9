"""Which tensors can be explained: candidates, the `auto` pick, and names given by the user.

A candidate is a feature map of the input's rank, traced from the input (graph/tokens.py):
(N, K, H, W) or (N, K, T) in the model's own layout with a spatial size that is not 1, and in a
channels-first image model also a channels-last map (N, h, w, K) and transformer tokens
(N, P + h * w, D). `auto` walks back from the class scores along float tensors and stops at the
first candidate: the one that feeds the global pooling or flatten (for a dense or detection
output, the first that a convolution reads: the features under the prediction convolutions;
a box target then picks its branch, engine/box_layer.py); among tokens it takes only a
LayerNorm's or a residual sum's output whose grid tokens reach the scores (a ViT's last block
input, not its output, which the head reads through the class token alone), and of a residual
stream the LayerNorm that reads it (a pre-norm block's norm1).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import onnx

from onnxcam.engine import metadata
from onnxcam.engine.graph import tokens
from onnxcam.engine.graph.info import FLOAT_TYPES, Dim, ModelInfo, info_of
from onnxcam.errors import LayerError

CHANNELS_LAST = "channels_last"

#: Node metadata in which torch's dynamo exporter records module paths.
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def shape_text(shape: tuple[Dim, ...] | None) -> str:
    """A shape as `onnxcam layers` prints it: (batch, 3, ?, ?); "?" where nothing is known."""
    if shape is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


@dataclass(frozen=True)
class LayerInfo:
    """A tensor that can be explained: its name, producing op, inferred shape and module scope."""

    name: str
    op_type: str
    shape: tuple[Dim, ...] | None
    scope: str = ""
    auto: bool = False
    grid: tokens.Grid | None = None  # None: a map in the model's own layout

    def shape_text(self) -> str:
        return shape_text(self.shape)

    def kind_text(self) -> str:
        """How the layer is read: "map", "channels last 7x7", "tokens 1+14x14"."""
        return "map" if self.grid is None else self.grid.text()


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


def candidates(info: ModelInfo, layout: str | None = None) -> dict[str, tokens.Grid | None]:
    """Every tensor that can be explained, in graph order, with its grid (None: a map in the
    model's own layout). `layout` is the input's (default: what the model records)."""
    layout = layout or metadata.stored_layout(info.model) or "channels_first"
    own = tokens.LAST if layout == CHANNELS_LAST else tokens.FIRST
    kinds = tokens.layouts(info, own)
    spatial = {}
    for name, kind in kinds.items():
        shape = info.specs[name].shape if name in info.specs else None
        if shape is not None and name != info.input.name:
            spatial[name] = tuple(shape[2:]) if kind == tokens.FIRST else tuple(shape[1:-1])
    sizes = {s for n, s in spatial.items() if kinds[n] == tokens.FIRST and _fixed(s)}
    found: dict[str, tokens.Grid | None] = {}
    reached = {info.input.name}
    for node in info.model.graph.node:
        if not any(name in reached for name in node.input):
            continue  # constants computed in the graph (an expanded class token)
        reached.update(node.output)
        for out in node.output:
            kind, cells = kinds.get(out), spatial.get(out)
            if kind == own and cells is not None and not all(d == 1 for d in cells):
                found[out] = None
            elif own == tokens.FIRST and kind == tokens.LAST and _fixed(cells) and min(cells) > 1:
                found[out] = tokens.Grid(tokens.LAST, cells)
            elif own == tokens.FIRST and kind is None:
                grid = tokens.token_grid(info, out, sizes)
                if grid is not None:
                    found[out] = grid
    return found


def _fixed(size) -> bool:
    return size is not None and len(size) > 0 and all(isinstance(d, int) for d in size)


def auto_layer(info: ModelInfo, layout: str | None = None, found: dict | None = None) -> str | None:
    """The last candidate in front of the classifier: found walking back from the logits.

    The walk follows float tensors only (never shape arithmetic) and stops at the first
    candidate, the one that feeds the global pooling or flatten; token layers qualify only as
    the output of a LayerNorm or of a residual sum whose grid tokens reach the scores.
    """
    found = candidates(info, layout) if found is None else found  # list_layers passes its own
    convolved = _read_by_convolutions(info) if _predicts_maps(info) else None
    for name in _walk_back(info):
        ready = name in found and _auto_ready(info, name, found[name])
        if ready and (convolved is None or name in convolved):
            return _normalised(info, name, found)
    return None


def prediction_features(info: ModelInfo, limit: int = 16) -> list[str]:
    """Feature maps that convolutions read, the `limit` nearest the output (walking back), in
    graph order: where a dense or detection output's explanation may start (a detector's
    neck, then its box and class branches at each scale)."""
    found = candidates(info)
    convolved = _read_by_convolutions(info)
    picked = [n for n in _walk_back(info) if n in found and found[n] is None and n in convolved]
    order = {out: i for i, node in enumerate(info.model.graph.node) for out in node.output}
    return sorted(picked[:limit], key=order.__getitem__)


def _walk_back(info: ModelInfo) -> Iterator[str]:
    """Tensors from the first output back, breadth first, along float tensors (never through
    shape arithmetic or into constants)."""
    specs, start = info.specs, info.logits
    queue, seen = deque([start]), {start}
    while queue:
        name = queue.popleft()
        if name != start:
            yield name
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


def _predicts_maps(info: ModelInfo) -> bool:
    """Whether the explained output is a dense map or detections: maps of predictions, whose
    last feature maps are the predictions themselves (a detector head's box and class rows)."""
    from onnxcam.engine.graph.outputs import CLASS_SCORES, outputs_of

    return outputs_of(info)[0].kind not in (CLASS_SCORES, "")


def _read_by_convolutions(info: ModelInfo) -> set[str]:
    """Tensors a convolution reads: for dense and detection outputs `auto` takes the last of
    them, the features that the prediction convolutions read (a detector's branch before its
    1x1 box or class convolution), not the predictions reshaped after them."""
    convolutions = ("Conv", "ConvTranspose")
    return {node.input[0] for node in info.model.graph.node if node.op_type in convolutions}


def _normalised(info: ModelInfo, name: str, found: dict) -> str:
    """A residual stream's LayerNorm output where one reads it and qualifies (a pre-norm
    block's `norm1`, the tensor pytorch-grad-cam's ViT example hooks), else `name`."""
    grid = found[name]
    if grid is None or grid.layout != tokens.TOKENS:
        return name
    for node in info.model.graph.node:
        if node.op_type == "LayerNormalization" and node.input[0] == name:
            out = node.output[0]
            if out in found and tokens.patch_tokens_reach(info, out, grid.prefix):
                return out
    return name


def _auto_ready(info: ModelInfo, name: str, grid: tokens.Grid | None) -> bool:
    if grid is None or grid.layout != tokens.TOKENS:
        return True
    node = info.producers.get(name)
    live = [i for i in node.input if i and i not in info.constants] if node else []
    stream = node is not None and (
        node.op_type == "LayerNormalization" or (node.op_type == "Add" and len(live) == 2)
    )
    return stream and tokens.patch_tokens_reach(info, name, grid.prefix)


def list_layers(model: onnx.ModelProto | ModelInfo, layout: str | None = None) -> list[LayerInfo]:
    """Candidate target layers, best first: the `auto` pick, then the rest from the output back."""
    info = info_of(model)
    found = candidates(info, layout)
    auto = auto_layer(info, layout, found)
    layers = [
        LayerInfo(out, node.op_type, info.specs[out].shape, scope(node), out == auto, found[out])
        for node in reversed(info.inferred.graph.node)
        for out in node.output
        if out in found
    ]
    layers.sort(key=lambda layer: not layer.auto)
    return layers


def find_layer(
    model: onnx.ModelProto | ModelInfo, layer: str, layout: str | None = None
) -> LayerInfo:
    """The LayerInfo of `auto`, a tensor name or an exported module path (or LayerError)."""
    info = info_of(model)
    layers = list_layers(info, layout)
    if layer == "auto":
        if not layers:
            raise LayerError("no layer with spatial axes found in the model: name one explicitly")
        return layers[0]
    aliases = metadata.stored_layers(info.model)
    name = aliases.get(layer, layer)
    known = set(info.producers) | {v.name for v in info.model.graph.input}
    shown = ", ".join(candidate.name for candidate in layers[:12])
    more = f" (and {len(layers) - 12} more)" if len(layers) > 12 else ""
    if name not in known and (in_scope := scoped(info, layers, name)) is not None:
        return in_scope
    if name in info.constants:
        raise LayerError(
            f"layer {layer!r} is a weight of the model (an initializer or a Constant), not an "
            "activation: "
            f"expected a tensor a node computes from the input; candidates: {shown or 'none'}"
            f"{more}. Run `onnxcam layers MODEL` for the full list."
        )
    if name not in known:
        alias = f"; exported module paths: {', '.join(aliases)}" if aliases else ""
        raise LayerError(
            f"unknown layer {layer!r}; candidates: {shown or 'none'}{more}{alias}. "
            "Run `onnxcam layers MODEL` for the full list."
        )
    chosen = next((candidate for candidate in layers if candidate.name == name), None)
    source = info.input
    if chosen is None and name == source.name and source.shape and len(source.shape) in (3, 4):
        chosen = LayerInfo(name, "input", source.shape)  # the input itself, as occlusion reads it
    if chosen is None:
        spec = info.specs.get(name)
        shape = shape_text(spec.shape if spec else None)
        raise LayerError(
            f"layer {layer!r} of shape {shape} is not a feature map with spatial axes: expected "
            "(N, K, H, W) or (N, K, T) following the input's grid (spatial size > 1), a "
            "channels-last map (N, H, W, K) or "
            "transformer tokens (N, P + h*w, D) (attention probabilities, per-head tensors and "
            f"flattened features are none); candidates: {shown or 'none'}{more}"
        )
    return chosen


def scoped(info: ModelInfo, layers: list[LayerInfo], path: str) -> LayerInfo | None:
    """The candidate a module path (as `onnxcam layers` shows it in brackets) stands for: the
    last one in graph order that the module computes, i.e. its output (None if there is none)."""
    inside = {layer.name: layer for layer in layers if layer.scope == path}
    last = [out for node in info.inferred.graph.node for out in node.output if out in inside]
    return inside[last[-1]] if last else None


def resolve_layer(model: onnx.ModelProto | ModelInfo, layer: str, layout: str | None = None) -> str:
    """Map `auto`, a tensor name or an exported module path to a tensor name (or LayerError)."""
    return find_layer(model, layer, layout).name
