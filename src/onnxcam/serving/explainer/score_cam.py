"""Score-CAM in graph form (paper profile): masks Resize(A_k) min-max normalised (eps 1e-8; a
constant channel gives weight 0), class logit of X * mask, softmax over the non-constant
channels, ReLU(sum_k w_k A_k). As the host does, the passes run per (image, channel) item:
a channel constant in its image runs none (its weight is 0 whatever it would score), and items
of one image whose min-max normalised maps are equal build the same masked input and share one
pass (ONNX Unique over the normalised maps). The Loop runs blocks of `chunk` distinct items, its
trip count computed in the graph."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.methods.parts.channels import MASK_EPS
from onnxcam.serving.explainer.blocks import (
    at_least_one,
    item_blocks,
    item_table,
    loop_items,
    minmax,
    pick_items,
    resize,
    scatter_items,
    weighted_relu,
)
from onnxcam.serving.explainer.site import Site


def score_cam(site: Site) -> str:
    b, x, acts, size_hw = site.b, site.x, site.acts, site.size_hw
    k, h, w = site.layer_shape
    chunk = min(site.chunk, k)
    flat = b.reshape(acts, [[-1, h * w]])  # (N * K, hw): item j is image j // K, channel j % K
    lo = b.reduce("ReduceMin", flat, [1])
    span = b.op("Sub", [b.reduce("ReduceMax", flat, [1]), lo])
    zero = b.const(0.0, np.float32)
    spans = b.op("Greater", [span, zero])
    varies = b.reshape(spans, [[-1]])
    items = b.reshape(b.op("NonZero", [varies]), [[-1]])  # (count,) the varying items
    ids, count = at_least_one(b, items)
    safe = b.op("Where", [spans, span, b.const(1.0, np.float32)])
    normalised = b.op("Gather", [b.op("Div", [b.op("Sub", [flat, lo]), safe]), ids], axis=0)
    image_of = b.op("Div", [ids, b.ints(k)])
    keys = b.op(
        "Concat",
        [b.unsqueeze(b.op("Cast", [image_of], to=TensorProto.FLOAT), [1]), normalised],
        axis=1,
    )
    _, first, inverse, _ = b.op("Unique", [keys], outputs=4, axis=0)
    run = b.op("Gather", [ids, first], axis=0)  # one item per distinct mask
    blocks, table, distinct = item_blocks(b, run, chunk)
    forward = site.full_forward()

    def body(bb: NodeBuilder, i: str) -> str:
        row = bb.op("Gather", [table, i], axis=0)  # (chunk,) items
        images = bb.op("Div", [row, bb.ints(k)])
        maps = bb.reshape(bb.op("Gather", [flat, row], axis=0), [[-1, 1, h, w]])
        masks = minmax(bb, resize(bb, maps, size_hw), [2, 3], MASK_EPS)
        masked = bb.op("Mul", [bb.op("Gather", [x, images], axis=0), masks])
        return pick_items(bb, forward.item_scores(bb, [masked], images), site.picked, images)

    scored = loop_items(b, body, blocks, distinct)  # (distinct, columns)
    shared = b.op("Gather", [scored, b.op("Slice", [inverse, b.ints([0]), count])], axis=0)
    placed = scatter_items(b, shared, items, b.op("Shape", [varies]), k)
    scores = item_table(b, placed, k, site.classes is not None)
    valid = site.per_row(b.reshape(varies, [[-1, k]]))
    acts = site.per_row(acts)
    lowest = b.const(np.finfo(np.float32).min, np.float32)
    top = b.reduce("ReduceMax", b.op("Where", [valid, scores, lowest]), [1])
    e = b.op("Where", [valid, b.op("Exp", [b.op("Sub", [scores, top])]), zero])
    total = b.reduce("ReduceSum", e, [1])
    safe_total = b.op("Where", [b.op("Greater", [total, zero]), total, b.const(1.0, np.float32)])
    return weighted_relu(b, acts, b.op("Div", [e, safe_total]))
