"""Score-CAM in graph form (paper profile): masks Resize(A_k) min-max normalised (eps 1e-8; a
constant channel gives weight 0), class logit of X * mask, softmax over the non-constant
channels, ReLU(sum_k w_k A_k). As the host does, a channel that is constant in every image of
the batch runs no pass (its weight is 0 whatever it would score): the Loop runs over the others
only, its trip count computed in the graph."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.methods.parts.channels import MASK_EPS
from onnxcam.serving.explainer.blocks import (
    Plan,
    loop_scores,
    minmax,
    pick,
    resize,
    weighted_relu,
)
from onnxcam.serving.explainer.site import Site


def score_cam(site: Site) -> str:
    b, x, acts, size_hw = site.b, site.x, site.acts, site.size_hw
    k = site.layer_shape[0]
    plan = Plan(k, site.chunk)
    lo = b.reduce("ReduceMin", acts, [2, 3], keepdims=False)
    varies = b.op("Greater", [b.reduce("ReduceMax", acts, [2, 3], keepdims=False), lo])
    channels, count, blocks, table = varying_channels(b, varies, plan.chunk)
    forward = site.full_forward()

    def body(bb: NodeBuilder, i: str) -> str:
        block = bb.op("Gather", [acts, bb.op("Gather", [table, i], axis=0)], axis=1)
        masks = minmax(bb, resize(bb, block, size_hw), [2, 3], MASK_EPS)
        masked = bb.op(
            "Mul",
            [
                bb.reshape(x, [bb.dims(x, 0, 1), [1], bb.dims(x, 1, 4)]),
                bb.reshape(masks, [[0, 0, 1], size_hw]),
            ],
        )
        items = bb.reshape(masked, [[-1], bb.dims(x, 1, 4)])
        return pick(bb, forward.scores(bb, [items], plan.chunk), site.picked, plan.chunk)

    run = loop_scores(b, plan, body, blocks, count)  # (rows, count): the varying channels'
    indices = b.op("Expand", [b.reshape(channels, [[1, -1]]), b.op("Shape", [run])])
    zeros = b.op(
        "Expand",
        [b.const(0.0, np.float32), b.op("Concat", [b.dims(run, 0, 1), b.ints([k])], axis=0)],
    )
    scores = b.op("ScatterElements", [zeros, indices, run], axis=1)
    acts = site.per_row(acts)
    valid = site.per_row(varies)
    lowest = b.const(np.finfo(np.float32).min, np.float32)
    top = b.reduce("ReduceMax", b.op("Where", [valid, scores, lowest]), [1])
    zero = b.const(0.0, np.float32)
    e = b.op("Where", [valid, b.op("Exp", [b.op("Sub", [scores, top])]), zero])
    total = b.reduce("ReduceSum", e, [1])
    safe_total = b.op("Where", [b.op("Greater", [total, zero]), total, b.const(1.0, np.float32)])
    return weighted_relu(b, acts, b.op("Div", [e, safe_total]))


def varying_channels(b, varies: str, chunk: int) -> tuple[str, str, str, str]:
    """From (N, K) "channel is not constant", the channels to run: their indices (count,), their
    count (1,) (at least 1: channel 0 stands in when all are constant, at weight 0), the number
    of Loop blocks (1,), and the (blocks, chunk) table of indices, the last index repeated."""
    wanted = b.reduce(
        "ReduceMax", b.op("Cast", [varies], to=TensorProto.INT64), [0], keepdims=False
    )
    found = b.reshape(b.op("NonZero", [wanted]), [[-1]])
    found = b.op("Concat", [found, b.ints([0])], axis=0)  # channel 0 where none varies
    size = b.op("Shape", [found])
    count = b.op("Max", [b.op("Sub", [size, b.ints([1])]), b.ints([1])])
    channels = b.op("Slice", [found, b.ints([0]), count])
    blocks = b.op("Div", [b.op("Add", [count, b.ints([chunk - 1])]), b.ints([chunk])])
    padded = b.op("Mul", [blocks, b.ints([chunk])])
    last = b.op("Slice", [channels, b.op("Sub", [count, b.ints([1])]), count])
    tail = b.op("Expand", [last, b.ints([chunk])])
    table = b.op("Slice", [b.op("Concat", [channels, tail], axis=0), b.ints([0]), padded])
    return channels, count, blocks, b.reshape(table, [[-1, chunk]])
