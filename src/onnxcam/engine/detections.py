"""Detections of a raw detector output, decoded on the host: boxes above a score, after NMS.

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
    """One input's detections, best first: boxes (D, 4) x1, y1, x2, y2, scores, classes."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    n_classes: int


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
