"""The parts every explainer graph is made of: the model's nodes copied into a Loop body, the
Loop over blocks of (image, channel) or (image, location) items decided in the graph, and the
map arithmetic (resize, min-max, weighted sum).

A Loop body reads the outer graph's tensors from its outer scope, so the model's nodes are
copied with their tensors renamed under a prefix; their weights are then given to each body
as its own copies (weights_into_bodies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxcam.engine import graph
from onnxcam.engine.graph.builder import NodeBuilder


def inline(
    nodes: Sequence[onnx.NodeProto], prefix: str, feeds: dict[str, str]
) -> tuple[list[onnx.NodeProto], dict[str, str]]:
    """Copies of `nodes` whose outputs are renamed under `prefix` and whose inputs named in
    `feeds` read other tensors; weights keep their names (read from the outer scope)."""
    graph.refuse_subgraphs(nodes, "expected a model without control flow for an explainer graph")
    names = dict(feeds)
    copies = []
    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(names.get(name, name) for name in node.input)
        for j, out in enumerate(node.output):
            if out:
                names[out] = copy.output[j] = prefix + out
        copy.name = prefix + (node.name or node.output[0])
        copies.append(copy)
    return copies, names


class Forward:
    """The model's nodes to copy into a Loop body: maps perturbed inputs to the head's scores
    (heads.py) of the explained output."""

    def __init__(
        self,
        nodes: list[onnx.NodeProto],
        inputs: list[str],
        output: str,
        head: Callable[[NodeBuilder, str, Callable[[str], str]], str],
    ) -> None:
        self.nodes, self.inputs, self.output, self.head = nodes, inputs, output, head

    def _output(self, b: NodeBuilder, feeds: list[str]) -> str:
        copies, names = inline(
            self.nodes, b.fresh("model") + "/", dict(zip(self.inputs, feeds, strict=True))
        )
        b.nodes.extend(copies)
        return names[self.output]

    def item_scores(self, b: NodeBuilder, feeds: list[str], images: str) -> str:
        """(rows, classes) scores of rows from the images `images` (rows,)."""
        return self.head(b, self._output(b, feeds), lambda t: b.op("Gather", [t, images], axis=0))


BodyScores = Callable[[NodeBuilder, str], str]


def loop_items(b: NodeBuilder, body_scores: BodyScores, blocks: str, items: str) -> str:
    """(items, columns) scores: a Loop over `blocks` (1-D int64, decided in the graph), each
    block scored (chunk, columns) by body_scores(bb, i), the padding past `items` dropped."""
    stacked = _loop(b, body_scores, b.reshape(blocks, [[]]))  # (blocks, chunk, columns)
    flat = b.reshape(stacked, [[-1], b.dims(stacked, 2, 3)])
    return b.op("Slice", [flat, b.ints([0]), items, b.ints([0])])


def at_least_one(b: NodeBuilder, items: str) -> tuple[str, str]:
    """The items (n,), or item 0 standing in where n is 0 (its scores are not read), and n
    as a 1-D tensor."""
    count = b.op("Shape", [items])
    padded = b.op("Concat", [items, b.ints([0])], axis=0)
    return b.op("Slice", [padded, b.ints([0]), b.op("Max", [count, b.ints([1])])]), count


def item_blocks(b: NodeBuilder, items: str, chunk: int) -> tuple[str, str, str]:
    """For items (n,) with n >= 1 decided in the graph: the number of Loop blocks (1,), the
    (blocks, chunk) table of items (the last repeated as padding) and n as a 1-D tensor."""
    count = b.op("Shape", [items])
    blocks = b.op("Div", [b.op("Add", [count, b.ints([chunk - 1])]), b.ints([chunk])])
    last = b.op("Slice", [items, b.op("Sub", [count, b.ints([1])]), count])
    padded = b.op("Concat", [items, b.op("Expand", [last, b.ints([chunk])])], axis=0)
    table = b.op("Slice", [padded, b.ints([0]), b.op("Mul", [blocks, b.ints([chunk])])])
    return blocks, b.reshape(table, [[-1, chunk]]), count


def scatter_items(b: NodeBuilder, scored: str, items: str, n_rows: str, k: int) -> str:
    """(items, columns) scores of (image, channel) items j = image * k + channel placed in
    zeros of (n_rows = N * k, columns), then shaped (N, k, columns)."""
    columns = b.dims(scored, 1, 2)
    zeros = b.op("Expand", [b.const(0.0, np.float32), b.op("Concat", [n_rows, columns], axis=0)])
    where = b.op("Expand", [b.unsqueeze(items, [1]), b.op("Shape", [scored])])
    placed = b.op("ScatterElements", [zeros, where, scored], axis=0)
    return b.reshape(placed, [[-1, k], columns])


def item_table(b: NodeBuilder, scores: str, k: int, every_class: bool) -> str:
    """(N, k, columns) item scores as the methods' (rows, k) table: (N, k) for the rows'
    targets, or a row per (image, class), image-major, for every class."""
    if not every_class:
        return b.reshape(scores, [[0, k]])
    return b.reshape(b.op("Transpose", [scores], perm=[0, 2, 1]), [[-1, k]])


def pick_items(b: NodeBuilder, scores: str, targets: str | None, images: str) -> str:
    """(rows, classes) scores of items from `images` -> (rows, 1) at each image's target, or
    all of them (targets None: every class)."""
    if targets is None:
        return scores
    target = b.reshape(b.op("Gather", [targets, images], axis=0), [[-1, 1]])
    return b.op("GatherElements", [scores, target], axis=1)


def _loop(b: NodeBuilder, body_scores: BodyScores, trips: str) -> str:
    """The Loop node's stacked scan output over `trips` iterations of body_scores(bb, i)."""
    body = NodeBuilder(b.opset, f"{b.prefix}body/", b.initializers)
    i, cond = body.fresh("iteration"), body.fresh("cond")
    scores = body_scores(body, i)
    cond_out = body.op("Identity", [cond])
    body_graph = helper.make_graph(
        body.nodes,
        "onnxcam_block",
        [
            helper.make_tensor_value_info(i, TensorProto.INT64, []),
            helper.make_tensor_value_info(cond, TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
            helper.make_tensor_value_info(scores, TensorProto.FLOAT, None),
        ],
    )
    return b.op("Loop", [trips, ""], body=body_graph)


def repeat_items(b: NodeBuilder, t: str, chunk: int) -> str:
    """(N, *d) -> (N * chunk, *d): each image's tensor once per item of the block."""
    rest = b.dims(t, 1, 1 << 30)
    lifted = b.reshape(t, [b.dims(t, 0, 1), [1], rest])
    grown = b.op(
        "Expand", [lifted, b.op("Concat", [b.dims(t, 0, 1), b.ints([chunk]), rest], axis=0)]
    )
    return b.reshape(grown, [[-1], rest])


def resize(b: NodeBuilder, x: str, size_hw: str) -> str:
    """Bilinear resize of the last two axes of a 4-D x to size_hw (half_pixel sampling)."""
    sizes = b.op("Concat", [b.dims(x, 0, 2), size_hw], axis=0)
    return b.op(
        "Resize", [x, "", "", sizes], mode="linear", coordinate_transformation_mode="half_pixel"
    )


def minmax(b: NodeBuilder, x: str, axes: list[int], eps: float) -> str:
    """(x - min) / (max - min + eps) per map over `axes`; a constant map becomes zeros."""
    lo = b.reduce("ReduceMin", x, axes)
    span = b.op("Sub", [b.reduce("ReduceMax", x, axes), lo])
    zero = b.const(0.0, np.float32)
    scale = b.op(
        "Where",
        [
            b.op("Greater", [span, zero]),
            b.op("Reciprocal", [b.op("Add", [span, b.const(eps, np.float32)])]),
            zero,
        ],
    )
    return b.op("Mul", [b.op("Sub", [x, lo]), scale])


def weighted_relu(b: NodeBuilder, acts: str, weights: str) -> str:
    """ReLU(sum_k w_k A^k) as (N, 1, h, w)."""
    scaled = b.op("Mul", [acts, b.reshape(weights, [[0, 0, 1, 1]])])
    return b.op("Relu", [b.reduce("ReduceSum", scaled, [1])])


def weights_into_bodies(model: onnx.ModelProto) -> None:
    """Give each Loop body its own copy of the weights it reads (renamed under the body's
    prefix), and drop outer weights nothing outside a body reads. ORT passes an outer-scope
    initializer into a Loop as an input, so the body's convolutions would lose what constant
    weights allow (prepacked kernels, the NCHWc layout); the cost is a second copy of the
    weights the forward pass also reads (bench/README.md)."""
    g = model.graph
    weights = {t.name: t for t in g.initializer}
    for node in g.node:
        for attr in node.attribute:
            if attr.type != onnx.AttributeProto.GRAPH:
                continue
            body = attr.g
            local = {}
            for inner in body.node:
                for i, name in enumerate(inner.input):
                    if name in weights:
                        local.setdefault(name, f"{body.name}/{name}")
                        inner.input[i] = local[name]
            for name, renamed in local.items():
                copy = onnx.TensorProto()
                copy.CopyFrom(weights[name])
                copy.name = renamed
                body.initializer.append(copy)
    outer_reads = {name for node in g.node for name in node.input}
    kept = [t for t in g.initializer if t.name in outer_reads]
    del g.initializer[:]
    g.initializer.extend(kept)
