"""ReciproCAM in graph form (no spreading kernel): the class probability (a region's or a
box's score as it is) of the tail on one feature map per location, min-max normalised at
layer resolution (before the resize). The passes run per (image, location) item, `chunk` of
them per Loop step; where the tail starts with a global average pool, each item is its map's
mean (the location's vector over the number of positions) through the graph after the pool."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.graph.outputs import CLASS_SCORES
from onnxcam.engine.postprocess import MAP_EPS
from onnxcam.serving.explainer.blocks import item_blocks, item_table, loop_items, minmax, pick_items
from onnxcam.serving.explainer.site import Site


def recipro_cam(site: Site) -> str:
    b, acts = site.b, site.acts
    _, h, w = site.layer_shape
    n_locations = h * w
    total = b.reshape(b.op("Mul", [b.dims(acts, 0, 1), b.ints([n_locations])]), [[]])
    items = b.op("Range", [b.const(0, np.int64), total, b.const(1, np.int64)])
    blocks, table, count = item_blocks(b, items, min(site.chunk, n_locations))
    one_hot = b.const(np.eye(n_locations, dtype=np.float32).reshape(-1, 1, h, w), np.float32)
    prob = site.head.kind == CLASS_SCORES  # a region's or a box's score is read as it is
    if site.pooled is None:
        forward = site.tail_forward()
    else:  # item (n, l)'s mean: A[n, :, l] over the number of positions, one row per item
        forward = site.pooled_forward()
        by_location = b.op("Transpose", [b.reshape(acts, [[0, 0, -1]])], perm=[0, 2, 1])
        means = b.op("Div", [by_location, b.const(float(n_locations), np.float32)])
        trailing = [1, 1] if site.pooled.keepdims else []
        item_means = b.reshape(means, [[-1], b.dims(acts, 1, 2), trailing])

    def edit(bb: NodeBuilder, row: str, images: str) -> str:
        if site.pooled is not None:
            return bb.op("Gather", [item_means, row], axis=0)
        mask = bb.op("Gather", [one_hot, bb.op("Mod", [row, bb.ints(n_locations)])], axis=0)
        return bb.op("Mul", [bb.op("Gather", [acts, images], axis=0), mask])

    def body(bb: NodeBuilder, i: str) -> str:
        row = bb.op("Gather", [table, i], axis=0)  # (chunk,) items
        images = bb.op("Div", [row, bb.ints(n_locations)])
        edited = edit(bb, row, images)
        crossing = [bb.op("Gather", [t, images], axis=0) for t in site.cut.crossing]
        scores = forward.item_scores(bb, [edited, *crossing], images)
        if prob:  # in float64, as the engine: probabilities over locations differ by little
            wide = bb.op("Cast", [scores], to=TensorProto.DOUBLE)
            scores = bb.op("Cast", [bb.op("Softmax", [wide], axis=-1)], to=TensorProto.FLOAT)
        return pick_items(bb, scores, site.picked, images)

    scored = loop_items(b, body, blocks, count)  # (N * locations, columns)
    per_image = b.reshape(scored, [[-1, n_locations], b.dims(scored, 1, 2)])
    scores = item_table(b, per_image, n_locations, site.classes is not None)
    return minmax(b, b.reshape(scores, [[-1, 1, h, w]]), [2, 3], MAP_EPS)
