"""Pointing game (Zhang et al. 2016; TorchRay) and its energy variant (Score-CAM), §3.3 of
docs/algorithms.md."""

from __future__ import annotations

import numpy as np

from onnxcam.errors import ArgumentError

POINTING_TOLERANCE = 15


def pointing_game(
    maps: np.ndarray, masks: np.ndarray, tolerance: int = POINTING_TOLERANCE
) -> np.ndarray:
    """Per map 1 if the disk of radius `tolerance` around its first maximum (row-major) meets the
    ground-truth mask: some (r, q) in the mask with (r - y)^2 + (q - x)^2 < tolerance^2."""
    if maps.shape != masks.shape:
        raise ArgumentError(f"maps {maps.shape} and masks {masks.shape} must have the same shape")
    hits = []
    for heat, mask in zip(maps, masks.astype(bool), strict=True):
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        rows, cols = np.nonzero(mask)
        hits.append(bool(np.any((rows - y) ** 2 + (cols - x) ** 2 < tolerance**2)))
    return np.array(hits, np.float64)


def pointing_accuracy(hits: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(mean over classes of each class's hit rate, as TorchRay reports; global hit rate)."""
    hits, classes = np.asarray(hits, np.float64), np.asarray(classes)
    if hits.shape != classes.shape or hits.ndim != 1 or len(hits) == 0:
        raise ArgumentError(
            f"expected one class per hit, got {hits.shape} hits and {classes.shape} classes"
        )
    _, index = np.unique(classes, return_inverse=True)
    per_class = np.bincount(index, weights=hits) / np.bincount(index)
    return float(per_class.mean()), float(hits.mean())


def energy_pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per map the share of its energy inside the ground-truth mask (Score-CAM's variant)."""
    if maps.shape != masks.shape:
        raise ArgumentError(f"maps {maps.shape} and masks {masks.shape} must have the same shape")
    total = maps.reshape(len(maps), -1).sum(axis=1)
    inside = (maps * masks.astype(bool)).reshape(len(maps), -1).sum(axis=1)
    return np.divide(inside, total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)
