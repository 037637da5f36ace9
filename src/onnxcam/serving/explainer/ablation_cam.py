"""Ablation-CAM in graph form (tail mode, value 0): w_k = (y - y_k) / y on the graph's tail
after the layer, weight 0 where |y| is ~0 or channel k is all zeros; ReLU(sum_k w_k A_k)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.parts.activations import SAFE_SCORE
from onnxcam.serving.explainer.blocks import Plan, loop_scores, tail_body, weighted_relu
from onnxcam.serving.explainer.site import Site


def ablation_cam(site: Site) -> str:
    b, acts = site.b, site.acts
    k = site.layer_shape[0]
    plan = Plan(k, site.chunk)
    keep = (1 - np.eye(k, dtype=np.float32))[:, :, None, None]
    table = b.const(plan.padded(keep), np.float32)
    cut = site.cut.crossing
    body = tail_body(plan, site.tail_forward(), acts, cut, site.picked, table, False)
    ablated = loop_scores(b, plan, body)
    y = site.row_scores()
    acts = site.per_row(acts)
    safe = b.op("Greater", [b.op("Abs", [y]), b.const(SAFE_SCORE, np.float32)])
    one, zero = b.const(1.0, np.float32), b.const(0.0, np.float32)
    ratio = b.op("Div", [b.op("Sub", [y, ablated]), b.op("Where", [safe, y, one])])
    peak = b.reduce("ReduceMax", b.op("Abs", [acts]), [2, 3], keepdims=False)
    unchanged = b.op("Equal", [peak, zero])
    weights = b.op("Where", [b.op("And", [safe, b.op("Not", [unchanged])]), ratio, zero])
    return weighted_relu(b, acts, weights)
