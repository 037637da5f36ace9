"""ReciproCAM in graph form (no spreading kernel): the class probability (a region's or a
box's score as it is) of the tail on one feature map per location, min-max normalised at
layer resolution (before the resize)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.graph.outputs import CLASS_SCORES
from onnxcam.engine.postprocess import MAP_EPS
from onnxcam.serving.explainer.blocks import Plan, loop_scores, minmax, tail_body
from onnxcam.serving.explainer.site import Site


def recipro_cam(site: Site) -> str:
    b = site.b
    spatial = site.layer_shape[1:]
    n_locations = int(np.prod(spatial))
    plan = Plan(n_locations, site.chunk)
    one_hot = np.eye(n_locations, dtype=np.float32).reshape(n_locations, 1, *spatial)
    table = b.const(plan.padded(one_hot), np.float32)
    prob = site.head.kind == CLASS_SCORES  # a region's or a box's score is read as it is
    body = tail_body(
        plan, site.tail_forward(), site.acts, site.cut.crossing, site.picked, table, prob
    )
    scores = loop_scores(b, plan, body)
    return minmax(b, b.reshape(scores, [[-1, 1, *spatial]]), [2, 3], MAP_EPS)
