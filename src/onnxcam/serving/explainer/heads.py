"""What an explainer graph scores, per kind of the explained output: one score per class.

Every method graph reads a (rows, classes) score table of the unperturbed batch and of each
perturbed pass; the head turns the model's output into it, as the host's targets do
(engine/targets.py), with what it fixes taken from the unperturbed batch:

- class scores: the scores themselves;
- dense map (N, K, *S): class k's scores summed over the positions where k is the argmax (for a
  one-channel map, where it exceeds half its largest value): the host's `region:k:auto`;
- raw detections: per class k, the box of its best anchor (its score, x objectness where the
  layout has one, largest); a pass scores the D-RISE similarity of its detections with that
  box: the host's `box:k:...` for perturbation methods. The top class is the top detection's,
  the host's `detection:0` (with no score threshold: the best anchor always exists).

`top` is what ArgMax and the `logits` output read; `base` the unperturbed target scores that
methods compare passes with (equal to `top` except for detections).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from onnxcam.engine import targets
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.graph.outputs import ANCHORS_FIRST, CLASS_SCORES, DECODED, DENSE, OutputInfo
from onnxcam.errors import ModelError

#: Maps a per-image tensor (N, ...) to the rows of a pass (each row's image's).
PerRow = Callable[[str], str]
#: (builder, the output of a pass, its rows' images as a PerRow) -> (rows, classes) scores.
ScoreFn = Callable[[NodeBuilder, str, PerRow], str]


@dataclass(frozen=True)
class Head:
    """The explained output read as class scores: the tensor read (`source`), kind, classes,
    top, base and score."""

    source: str
    kind: str
    n_classes: int
    top: str
    base: str
    score: ScoreFn


def head_for(b: NodeBuilder, output: OutputInfo, logits: str) -> Head:
    """The head of the explained output. Class scores are read at `logits`, the input of a
    Softmax that ends the model (as the host reads them); other kinds at the output itself."""
    shape = output.shape
    if output.kind == DECODED:
        raise ModelError(
            f"an explainer graph reads class scores, a dense map or raw detections; output "
            f"{output.name!r} holds decoded detections (after NMS): expected the raw output "
            "(N, 4+K, anchors) or (N, anchors, 5+K), named by --model-output where the model "
            "returns it"
        )
    if shape is None or not all(isinstance(d, int) for d in shape[1:]):
        raise ModelError(
            f"an explainer graph needs the explained output's shape known past the batch: "
            f"{output.name!r} has shape {shape}"
        )
    if output.kind == CLASS_SCORES:
        scores = _class_scores(b, logits, _same)
        n_classes = int(np.prod(shape[1:]))
        return Head(logits, output.kind, n_classes, scores, scores, _class_scores)
    out = b.op("Cast", [output.name], to=TensorProto.FLOAT)
    if output.kind == DENSE:
        return _dense(b, output.name, out, shape)
    return _detections(b, output.name, out, output.kind, shape)


def _class_scores(b: NodeBuilder, out: str, per_row: PerRow) -> str:
    return b.reshape(b.op("Cast", [out], to=TensorProto.FLOAT), [[0, -1]])


def _same(t: str) -> str:
    """The unperturbed batch: a row per image."""
    return t


def _dense(b: NodeBuilder, source: str, out: str, shape: tuple) -> Head:
    n_classes, n_spatial = shape[1], len(shape) - 2
    spatial = list(range(2, n_spatial + 2))
    if n_classes == 1:
        half = b.op("Mul", [b.reduce("ReduceMax", out, spatial), b.const(0.5, np.float32)])
        masks = b.op("Cast", [b.op("Greater", [out, half])], to=TensorProto.FLOAT)
    else:
        winner = b.op("ArgMax", [out], axis=1, keepdims=1)  # (N, 1, *S)
        classes = b.const(np.arange(n_classes).reshape(1, -1, *[1] * n_spatial), np.int64)
        masks = b.op("Cast", [b.op("Equal", [winner, classes])], to=TensorProto.FLOAT)

    def score(bb: NodeBuilder, o: str, per_row: PerRow) -> str:
        o = bb.op("Cast", [o], to=TensorProto.FLOAT)
        return targets.region_scores(bb, o, per_row(masks), n_spatial)

    base = score(b, out, _same)
    return Head(source, DENSE, n_classes, base, base, score)


def _detections(b: NodeBuilder, source: str, out: str, layout: str, shape: tuple) -> Head:
    rows, first = targets.box_rows(b, out, layout)
    n_rows = shape[2] if layout == ANCHORS_FIRST else shape[1]
    n_classes = n_rows - first

    confidence = targets.along(b, rows, first, n_rows, 1)  # (N, K, A)
    if layout == ANCHORS_FIRST:
        confidence = b.op("Mul", [confidence, targets.along(b, rows, 4, 5, 1)])
    best = b.op("ArgMax", [confidence], axis=2, keepdims=1)  # (N, K, 1)
    top = b.reduce("ReduceMax", confidence, [2], keepdims=False)
    index = b.op(
        "Expand",
        [
            b.op("Transpose", [best], perm=[0, 2, 1]),
            b.op("Concat", [b.dims(rows, 0, 1), b.ints([4, n_classes])], axis=0),
        ],
    )
    picked = b.op("GatherElements", [targets.along(b, rows, 0, 4, 1), index], axis=2)  # (N, 4, K)
    sides = [
        b.op("Transpose", [targets.along(b, picked, i, i + 1, 1)], perm=[0, 2, 1]) for i in range(4)
    ]
    boxes = b.op("Concat", targets.corners_of(b, *sides), axis=2)  # (N, K, 4) x1, y1, x2, y2

    def score(bb: NodeBuilder, o: str, per_row: PerRow) -> str:
        o = bb.op("Cast", [o], to=TensorProto.FLOAT)
        rows = per_row(boxes)
        corners = [targets.along(bb, rows, i, i + 1, 2) for i in range(4)]  # (rows, K, 1) each
        return targets.box_scores(bb, o, layout, corners, "d-rise")

    return Head(source, layout, n_classes, top, score(b, out, _same), score)
