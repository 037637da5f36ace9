"""Score-CAM in graph form (paper profile): masks Resize(A_k) min-max normalised (eps 1e-8; a
constant channel gives weight 0), class logit of X * mask, softmax over the non-constant
channels, ReLU(sum_k w_k A_k). Every channel runs its pass."""

from __future__ import annotations

import numpy as np

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
    table = b.ints(plan.padded(np.arange(k)))
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

    scores = loop_scores(b, plan, body)
    acts = site.per_row(acts)
    lo = b.reduce("ReduceMin", acts, [2, 3], keepdims=False)
    valid = b.op("Greater", [b.reduce("ReduceMax", acts, [2, 3], keepdims=False), lo])
    lowest = b.const(np.finfo(np.float32).min, np.float32)
    top = b.reduce("ReduceMax", b.op("Where", [valid, scores, lowest]), [1])
    zero = b.const(0.0, np.float32)
    e = b.op("Where", [valid, b.op("Exp", [b.op("Sub", [scores, top])]), zero])
    total = b.reduce("ReduceSum", e, [1])
    safe_total = b.op("Where", [b.op("Greater", [total, zero]), total, b.const(1.0, np.float32)])
    return weighted_relu(b, acts, b.op("Div", [e, safe_total]))
