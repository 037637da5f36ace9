"""A score curve over the fraction of positions changed, and its area."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onnxcam.errors import ArgumentError


def auc(curve: np.ndarray) -> float:
    """Trapezoid area under a curve sampled on a uniform grid of [0, 1] (RISE's `auc`)."""
    curve = np.asarray(curve, np.float64)
    if len(curve) < 2:
        raise ArgumentError(f"a curve needs at least 2 points, got {len(curve)}")
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (len(curve) - 1))


@dataclass
class Curves:
    """scores (N, P): class probability per input at each of P points; fractions (P,): share of
    positions changed at each point. grid "uniform" integrates on a uniform x grid (RISE, even
    where the last step moves fewer positions); "fraction" against `fractions` (torchcam)."""

    fractions: np.ndarray
    scores: np.ndarray
    grid: str = "uniform"

    def areas(self) -> np.ndarray:
        """(N,) area under each input's curve."""
        if self.grid == "uniform":
            return np.array([auc(c) for c in self.scores])
        widths = np.diff(self.fractions)
        return ((self.scores[:, 1:] + self.scores[:, :-1]) / 2 * widths).sum(axis=1)

    def means(self) -> np.ndarray:
        """(N,) mean score over the points (ROAD's average over removal levels)."""
        return self.scores.mean(axis=1)
