"""Attention probabilities in a transformer's graph, one tensor per block.

A block's attention probabilities are the output of a Softmax over the keys of a query-key
product: walking back from the Softmax's input through scaling, masks and position biases
(Add, Sub, Mul, Div, Where, Cast) reaches a MatMul of two computed tensors. Exporters name them
as they like, so they are found by this structure; ONNX's fused `Attention` op is read in its
inlined form (the function body of its schema). Only global attention over the whole input
counts: probabilities (N, heads, T, T) whose batch axis is the input's and whose T tokens are
P prefix tokens plus the grid cells of a token layer (Swin's windows ride on a folded batch and
are none). Each block's output, the residual sum after it, is what LeGrad reads.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import onnx

from onnxcam.engine.graph import layers, tokens
from onnxcam.engine.graph.info import ModelInfo, info_of
from onnxcam.errors import LayerError

#: Ops between the query-key MatMul and the Softmax: scale, masks, relative position biases.
SCORE_OPS = frozenset(("Add", "Sub", "Mul", "Div", "Where", "Cast", "Identity"))
#: How far back from a Softmax the query-key MatMul may lie.
MAX_SCORE_OPS = 6


@dataclass(frozen=True)
class Attention:
    """One block's attention probabilities (N, heads, T, T) and the block's output (N, T, D)."""

    name: str
    block: int
    heads: int | str | None
    grid: tokens.Grid
    output: str | None = None
    scope: str = ""


def find(model: onnx.ModelProto | ModelInfo) -> list[Attention]:
    """Every block's global attention probabilities, in graph order (empty for a CNN).
    `model` must have its fused Attention ops inlined (graph.inline_function_ops)."""
    info = info_of(model)
    token_layers = {
        name: grid
        for name, grid in layers.candidates(info).items()
        if grid is not None and grid.layout == tokens.TOKENS
    }
    grids = {grid.prefix + math.prod(grid.size): grid for grid in token_layers.values()}
    order = {out: i for i, node in enumerate(info.model.graph.node) for out in node.output}
    found: list[tuple[str, tokens.Grid, onnx.NodeProto]] = []
    for node in info.model.graph.node:
        if node.op_type != "Softmax" or not _after_query_key(info, node.input[0]):
            continue
        out = node.output[0]
        spec = info.specs.get(out)
        shape = spec.shape if spec is not None else None
        if shape is None or len(shape) != 4 or not isinstance(shape[-1], int):
            continue
        axis = int(next((a.i for a in node.attribute if a.name == "axis"), -1))
        if axis not in (-1, 3) or shape[-2] != shape[-1] or shape[-1] not in grids:
            continue
        if tokens.follows_batch(info, out):
            found.append((out, grids[shape[-1]], node))
    outputs = _block_outputs(info, [name for name, _, _ in found], order, token_layers)
    return [
        Attention(name, i, _dim(info, name, 1), grid, outputs[i], layers.scope(node))
        for i, (name, grid, node) in enumerate(found)
    ]


def require(found: list[Attention], method: str) -> list[Attention]:
    """The blocks `find` found, or a LayerError saying what `method` needs."""
    if not found:
        raise LayerError(
            f"{method} reads a transformer's attention probabilities: expected Softmax outputs "
            "(N, heads, T, T) over the keys of a query-key product, T = prefix + grid tokens; "
            "the model has none (a CNN, or attention only within windows)"
        )
    sizes = {(a.grid.prefix, a.grid.size) for a in found}
    if len(sizes) > 1:
        raise LayerError(
            f"{method} multiplies attention through the blocks: expected one token count, "
            f"found blocks over {len(sizes)} different grids"
        )
    return found


def _dim(info: ModelInfo, name: str, axis: int) -> int | str | None:
    shape = info.specs[name].shape
    return shape[axis] if shape is not None else None


def _after_query_key(info: ModelInfo, name: str) -> bool:
    """Whether `name` is a query-key product, up to a few scaling and masking ops."""
    frontier = [name]
    for _ in range(MAX_SCORE_OPS):
        following = []
        for tensor in frontier:
            node = info.producers.get(tensor)
            if node is None:
                continue
            live = [i for i in node.input if i and i not in info.constants]
            if node.op_type == "MatMul":
                if len(live) == 2:
                    return True
            elif node.op_type in SCORE_OPS:
                following.extend(live)
        frontier = following
    return False


def _block_outputs(
    info: ModelInfo, probabilities: list[str], order: dict[str, int], token_layers: dict
) -> list:
    """Per block, its output: the last residual sum of tokens (of `token_layers`) after its
    attention and before the next block's (None where there is none)."""
    sums = [
        name
        for name in token_layers
        if info.producers[name].op_type == "Add"
        and sum(1 for i in info.producers[name].input if i not in info.constants) == 2
    ]
    bounds = [order[p] for p in probabilities] + [len(order) + 1]
    outputs = []
    for start, stop in itertools.pairwise(bounds):
        inside = [name for name in sums if start < order[name] < stop]
        outputs.append(inside[-1] if inside else None)
    return outputs
