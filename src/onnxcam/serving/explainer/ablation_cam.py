"""Ablation-CAM in graph form (tail mode, value 0): w_k = (y - y_k) / y on the graph's tail
after the layer, weight 0 where |y| is ~0 or channel k is all zeros; ReLU(sum_k w_k A_k). As
the host does, the passes run per (image, channel) item, and a channel that is all zeros in its
image runs none (ablating it changes nothing); the Loop runs blocks of `chunk` items, its trip
count computed in the graph. Where the tail starts with a global average pool, the pool's means
are ablated and only the graph after the pool runs."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.methods.parts.activations import SAFE_SCORE
from onnxcam.serving.explainer.blocks import (
    at_least_one,
    item_blocks,
    item_table,
    loop_items,
    pick_items,
    scatter_items,
    weighted_relu,
)
from onnxcam.serving.explainer.site import Site


def ablation_cam(site: Site) -> str:
    b, acts = site.b, site.acts
    k = site.layer_shape[0]
    zero = b.const(0.0, np.float32)
    peak = b.reduce("ReduceMax", b.op("Abs", [acts]), [2, 3], keepdims=False)  # (N, K)
    unchanged = b.op("Equal", [peak, zero])
    items = b.reshape(b.op("NonZero", [b.reshape(b.op("Not", [unchanged]), [[-1]])]), [[-1]])
    ids, count = at_least_one(b, items)
    blocks, table, _ = item_blocks(b, ids, min(site.chunk, k))
    if site.pooled is None:
        source, forward, trailing = acts, site.tail_forward(), [1, 1]
    else:  # an ablated channel's mean is 0: ablate the pool's means
        source, forward = site.mean_of(acts), site.pooled_forward()
        trailing = [1, 1] if site.pooled.keepdims else []
    channels = b.const(np.arange(k).reshape(1, k, *trailing), np.int64)

    def body(bb: NodeBuilder, i: str) -> str:
        row = bb.op("Gather", [table, i], axis=0)  # (chunk,) items
        images = bb.op("Div", [row, bb.ints(k)])
        ablated = bb.reshape(bb.op("Mod", [row, bb.ints(k)]), [[-1, 1, *trailing]])
        kept = bb.op("Not", [bb.op("Equal", [channels, ablated])])
        keep = bb.op("Cast", [kept], to=TensorProto.FLOAT)
        edited = bb.op("Mul", [bb.op("Gather", [source, images], axis=0), keep])
        crossing = [bb.op("Gather", [t, images], axis=0) for t in site.cut.crossing]
        scores = forward.item_scores(bb, [edited, *crossing], images)
        return pick_items(bb, scores, site.picked, images)

    scored = loop_items(b, body, blocks, count)
    placed = scatter_items(b, scored, items, b.op("Shape", [b.reshape(peak, [[-1]])]), k)
    ablated = item_table(b, placed, k, site.classes is not None)
    y = site.row_scores()
    acts = site.per_row(acts)
    safe = b.op("Greater", [b.op("Abs", [y]), b.const(SAFE_SCORE, np.float32)])
    one = b.const(1.0, np.float32)
    ratio = b.op("Div", [b.op("Sub", [y, ablated]), b.op("Where", [safe, y, one])])
    skipped = site.per_row(unchanged)
    weights = b.op("Where", [b.op("And", [safe, b.op("Not", [skipped])]), ratio, zero])
    return weighted_relu(b, acts, weights)
