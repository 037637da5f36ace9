"""Detections of a detector's output on the host: a raw output decoded (boxes above a score,
after NMS), or the model's own decoded detections read.

Box targets use them to find the box a `detection:k` target explains and to refuse a box that
no detection matches. Thresholds are the YOLO defaults (score 0.25, NMS IoU 0.45).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORE_THRESHOLD = 0.25
NMS_IOU = 0.45


@dataclass(frozen=True)
class Detections:
    """One input's detections, best first: boxes (D, 4) x1, y1, x2, y2, scores, classes; the
    number of classes where the output tells it."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    n_classes: int | None


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of each of boxes (D, 4) with one box (4,), corners x1, y1, x2, y2."""
    ix = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = ix * iy
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(areas + (box[2] - box[0]) * (box[3] - box[1]) - inter, 1e-12)


def decode(raw: np.ndarray, anchors_first: bool) -> list[Detections]:
    """Per input: anchors whose best class score (x objectness) reaches SCORE_THRESHOLD,
    kept by per-class NMS, best first. raw is (N, 4+K, A), or (N, A, 5+K) if anchors_first."""
    rows = np.swapaxes(raw, 1, 2) if anchors_first else raw
    rows = rows.astype(np.float64)
    first = 5 if anchors_first else 4
    found = []
    for image in rows:
        probs = image[first:]
        if anchors_first:
            probs = probs * image[4]
        classes, scores = probs.argmax(axis=0), probs.max(axis=0)
        keep = np.flatnonzero(scores >= SCORE_THRESHOLD)
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        cx, cy, w, h = image[:4, keep]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        chosen: list[int] = []
        for j in range(len(keep)):
            same = [i for i in chosen if classes[keep[i]] == classes[keep[j]]]
            if not same or iou(boxes[same], boxes[j]).max() <= NMS_IOU:
                chosen.append(j)
        kept = keep[chosen]
        found.append(Detections(boxes[chosen], scores[kept], classes[kept], len(probs)))
    return found


def decoded(values: list[np.ndarray], packed: bool) -> list[Detections]:
    """Per input, the detections a model decoded itself: boxes (N, D, 4), scores (N, D) and
    classes (N, D) (class 0 for all where absent), or one (N, D, 6) table where packed; rows
    of score 0 or less (padding) and of boxes not finite dropped, best first."""
    if packed:
        table = np.asarray(values[0], np.float64)
        boxes, scores, classes = table[..., :4], table[..., 4], table[..., 5]
    else:
        boxes, scores = (np.asarray(v, np.float64) for v in values[:2])
        classes = values[2] if len(values) > 2 else np.zeros(scores.shape)
    found = []
    for box, score, cls in zip(boxes, scores, classes, strict=True):
        keep = np.flatnonzero((score > 0) & np.isfinite(box).all(axis=1))
        keep = keep[np.argsort(-score[keep], kind="stable")]
        labels = np.rint(np.asarray(cls, np.float64)[keep]).astype(np.int64)
        found.append(Detections(box[keep], score[keep], labels, None))
    return found
