"""Which tensors are feature maps, and transformer tokens read as one.

A feature map is a tensor whose axes follow the input's grid. Its layout is traced from the
data input through the graph: spatial ops (Conv, pools, BatchNorm, Resize) write channels-first
maps (N, K, *S); elementwise ops, padding, slicing, concatenation, LayerNorm and channel-wise
MatMul keep the layout they read; a Transpose between (N, K, *S) and (N, *S, K) turns one into
the other; anything else (Reshape, attention, Softmax, Gather) writes something that is not a
map, so attention probabilities (N, heads, T, T) and per-head tensors (N, T, heads, d) never
are. The batch axis must stay the input's (Swin's windows ride on a batch of 4N).

Token layers are transformer tensors (N, T, D) whose T = P + h * w tokens are P prefix tokens
(class, distillation, registers) and the cells of an h x w grid of the input (ViT, DeiT; Swin
and MobileViT without prefix); a channels-last map (N, h, w, D) of a channels-first model
(ConvNeXt's permuted blocks) is one too. `as_feature_map` rewrites the graph so the layer is an
(N, D, h, w) tensor that every method, kernel and graph cut sees as an ordinary map, while the
rest of the graph reads the tokens back from it, the prefix tokens unchanged.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxcam.engine.graph.info import FLOAT_TYPES, PROBE_BATCH, ModelInfo, attributes
from onnxcam.engine.graph.surgery import read_through

FIRST, LAST, TOKENS = "first", "last", "tokens"
#: Prefix tokens looked for before the grid's cells: class, distillation and register tokens.
MAX_PREFIX = 8
#: Fewer grid cells than this are no token layer (an (N, 4, 64) is rather flattened channels).
MIN_CELLS = 9
SPATIAL_OPS = frozenset(
    ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "BatchNormalization")
).union(("InstanceNormalization", "LRN", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth"))
KEEPING_OPS = frozenset(
    ("Identity", "Dropout", "Cast", "Relu", "LeakyRelu", "PRelu", "Clip", "Elu", "Selu", "Celu")
).union(
    ("Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Gelu", "Mish"),
    ("Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Pow", "Neg", "Abs", "ThresholdedRelu"),
    ("Add", "Sub", "Mul", "Div", "Sum", "Mean", "Max", "Min", "Where"),
    ("Pad", "Slice", "Concat", "Split", "LayerNormalization", "MatMul"),
)


@dataclass(frozen=True)
class Grid:
    """How a layer's values sit on the input's grid: `layout` FIRST (N, K, *S), LAST
    (N, *S, K) or TOKENS (N, prefix + prod(size), D), and the grid's `size`."""

    layout: str
    size: tuple[int, ...]
    prefix: int = 0

    def text(self) -> str:
        cells = "x".join(map(str, self.size))
        if self.layout == TOKENS:
            return f"tokens {self.prefix}+{cells}"
        return "channels last " + cells if self.layout == LAST else cells


def layouts(info: ModelInfo, input_layout: str = FIRST) -> dict[str, str]:
    """FIRST or LAST for every tensor that is a feature map of the input's rank."""
    source = info.input
    rank = info.input_rank
    found = {source.name: input_layout} if rank in (3, 4) else {}
    for node in info.model.graph.node:
        layout = _written_layout(node, found, info)
        if layout is None:
            continue
        for out in node.output:
            spec = info.specs.get(out)
            ok = spec is not None and spec.shape is not None and len(spec.shape) == rank
            if ok and spec.elem_type in FLOAT_TYPES and follows_batch(info, out):
                found[out] = layout
    return found


def follows_batch(info: ModelInfo, name: str) -> bool:
    """Whether axis 0 of `name` is the input's batch axis: found by the batch probe (shapes
    inferred at a batch of PROBE_BATCH), else the same number or a symbol of its own
    (exporters name the batch differently per tensor), never an expression of it such as
    Swin's 4*batch, which folds windows into the batch."""
    probed = info.batch_probe.get(name)
    if probed is not None and probed.shape and isinstance(probed.shape[0], int):
        batch = (info.input.shape or (None,))[0]
        return probed.shape[0] == (batch if isinstance(batch, int) else PROBE_BATCH)
    spec = info.specs.get(name)
    dim, batch = spec.shape[0], (info.input.shape or (None,))[0]
    if isinstance(dim, int) or isinstance(batch, int):
        return dim == batch
    return dim is None or not any(sign in str(dim) for sign in "*+-/")


def _written_layout(node: onnx.NodeProto, found: dict[str, str], info: ModelInfo) -> str | None:
    read = [found[name] for name in node.input if name in found]
    if node.op_type in SPATIAL_OPS:
        return FIRST if read[:1] == [FIRST] or not read else None
    if not read or len(set(read)) != 1:
        return None
    if node.op_type == "Transpose":
        rank = info.input_rank
        perm = list(attributes(node).get("perm", []))
        to_last, to_first = [0, *range(2, rank), 1], [0, rank - 1, *range(1, rank - 1)]
        if read[0] == FIRST and perm == to_last:
            return LAST
        return FIRST if read[0] == LAST and perm == to_first else None
    if node.op_type == "MatMul" and not (
        node.input[0] in found and read[0] == LAST and node.input[1] in info.constants
    ):
        return None  # only a channel-wise linear layer keeps a (channels-last) map
    return read[0] if node.op_type in KEEPING_OPS else None


def input_grid(info: ModelInfo) -> tuple[int, ...] | None:
    """The input's spatial size, where the graph fixes it (channels-first images)."""
    shape = info.input.shape
    if shape is None or len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
        return None
    return tuple(shape[2:])


def token_grid(info: ModelInfo, name: str, sizes: set[tuple[int, ...]]) -> Grid | None:
    """The grid of an (N, T, D) tensor, T = P + h * w: the smallest prefix P for which the
    cells form the input's grid at some stride (the grids of the model's maps first). A map
    reshaped to (N, K, H * W) is not one: its grid is on the last axis."""
    spec, source = info.specs.get(name), input_grid(info)
    if _flattened_map(info, name):
        return None
    if source is None or spec is None or spec.shape is None or len(spec.shape) != 3:
        return None
    if spec.elem_type not in FLOAT_TYPES or not follows_batch(info, name):
        return None
    tokens, dim = spec.shape[1:]
    if not isinstance(tokens, int) or not isinstance(dim, int) or dim < 2:
        return None
    strided = {tuple(math.ceil(s / stride) for s in source) for stride in range(1, 65)}
    grids = sorted(sizes, reverse=True) + sorted(strided - sizes, reverse=True)
    for prefix in range(min(MAX_PREFIX, tokens - 4) + 1):
        for size in grids:
            cells = math.prod(size)
            if cells >= MIN_CELLS and cells == tokens - prefix and prefix <= cells // 2:
                return Grid(TOKENS, size, prefix)
    return None


def _flattened_map(info: ModelInfo, name: str) -> bool:
    node = info.producers.get(name)
    if node is None or node.op_type not in ("Reshape", "Flatten"):
        return False
    source, out = info.specs.get(node.input[0]), info.specs.get(name)
    if source is None or source.shape is None or out is None or out.shape is None:
        return False
    cells = source.shape[2:]
    fixed = all(isinstance(d, int) for d in cells)
    return len(source.shape) == 4 and fixed and out.shape[-1] == math.prod(cells)


#: Ops after which each token still holds only its own position's information.
TOKEN_WISE = frozenset(("LayerNormalization", "Gelu", "Dropout", "Identity", "Cast")).union(
    ("Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Erf", "Pow", "Sqrt", "Reciprocal")
)


def patch_tokens_reach(info: ModelInfo, name: str, prefix: int) -> bool:
    """Whether the class scores depend on the grid tokens of token layer `name`: False when
    every path to them picks prefix tokens out (Gather or Slice on the token axis) before any
    op that mixes tokens (a ViT's last block output, read only through its class token)."""
    if prefix == 0:
        return True
    own = {name}  # tensors whose tokens hold only their own position's information
    mixed: set[str] = set()
    for node in info.model.graph.node:
        reads_own = any(i in own for i in node.input)
        if any(i in mixed for i in node.input):
            mixed.update(node.output)
        if not reads_own:
            continue
        if _picks_prefix(info, node, prefix):
            continue
        live = [i for i in node.input if i and i not in info.constants]
        token_wise = node.op_type in TOKEN_WISE or (
            node.op_type == "MatMul" and len(live) == 1 and live[0] == node.input[0]
        )
        (own if token_wise else mixed).update(node.output)
    return info.logits in own or info.logits in mixed


def _picks_prefix(info: ModelInfo, node: onnx.NodeProto, prefix: int) -> bool:
    """A Gather or Slice on axis 1 (the token axis) that keeps prefix tokens only."""

    def constant(index: int):
        name = node.input[index] if len(node.input) > index else ""
        tensor = info.constant_tensors.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    axis = attributes(node).get("axis", 0)
    if node.op_type == "Gather" and axis == 1:
        picked = constant(1)
        return picked is not None and bool(((np.asarray(picked) >= 0) & (picked < prefix)).all())
    if node.op_type == "Slice":
        starts, ends, axes = constant(1), constant(2), constant(3)
        if starts is None or ends is None or axes is None or list(axes) != [1]:
            return False
        return int(starts[0]) >= 0 and 0 < int(ends[0]) <= prefix
    return False


def as_feature_map(
    model: onnx.ModelProto, info: ModelInfo, name: str, grid: Grid
) -> tuple[onnx.ModelProto, str]:
    """A copy in which token layer `name` is also an (N, D, h, w) tensor: the returned name.
    The graph's readers of `name` read it back from that map (its prefix tokens unchanged)."""
    model = copy.deepcopy(model)
    g = model.graph
    rank = info.input_rank
    base = f"{name}__onnxcam"
    feature_map, restored = f"{base}_map", f"{base}_tokens"
    nodes, inits = [], []

    def ints(label: str, values) -> str:
        inits.append(numpy_helper.from_array(np.asarray(values, np.int64), f"{base}_{label}_c"))
        return inits[-1].name

    if grid.layout == LAST:
        nodes.append(
            helper.make_node(
                "Transpose", [name], [feature_map], perm=[0, rank - 1, *range(1, rank - 1)]
            )
        )
        nodes.append(
            helper.make_node("Transpose", [feature_map], [restored], perm=[0, *range(2, rank), 1])
        )
    else:
        tokens, dim = info.specs[name].shape[1:]
        cells = f"{base}_cells"
        nodes.append(
            helper.make_node(
                "Slice",
                [name, ints("from", [grid.prefix]), ints("to", [tokens]), ints("axis", [1])],
                [cells],
            )
        )
        on_grid = f"{base}_grid"
        nodes.append(
            helper.make_node("Reshape", [cells, ints("grid", [0, *grid.size, dim])], [on_grid])
        )
        nodes.append(helper.make_node("Transpose", [on_grid], [feature_map], perm=[0, 3, 1, 2]))
        back, flat = f"{base}_back", f"{base}_flat"
        nodes.append(helper.make_node("Transpose", [feature_map], [back], perm=[0, 2, 3, 1]))
        nodes.append(helper.make_node("Reshape", [back, ints("flat", [0, -1, dim])], [flat]))
        if grid.prefix:
            head = f"{base}_prefix"
            nodes.append(
                helper.make_node(
                    "Slice",
                    [name, ints("start", [0]), ints("prefix", [grid.prefix]), ints("axis0", [1])],
                    [head],
                )
            )
            nodes.append(helper.make_node("Concat", [head, flat], [restored], axis=1))
        else:
            nodes.append(helper.make_node("Identity", [flat], [restored]))
    read_through(g, name, nodes, restored)
    g.initializer.extend(inits)
    return model, feature_map
