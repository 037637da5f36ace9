"""Average Drop, Increase in Confidence and Win % (algorithms §3.1; Grad-CAM++ §5.1)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.scoring import HasScorer, Scorer, scorer_of
from onnxcam.evaluation.metrics.common import check_inputs


def confidence_change(
    model: Scorer | HasScorer, x: np.ndarray, maps: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Y, O): class probability of X and of the explanation map E = map * X (Grad-CAM++ §5.1)."""
    check_inputs(x, maps, classes)
    scorer = scorer_of(model)
    original = scorer.scores_of(x, classes)
    explained = scorer.scores_of(x * maps[:, None], classes)
    return original, explained


def average_drop(
    model: Scorer | HasScorer, x: np.ndarray, maps: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Per input max(0, Y - O) / Y; the paper's Average Drop % is 100 x their mean."""
    original, explained = confidence_change(model, x, maps, classes)
    return np.maximum(original - explained, 0) / np.maximum(original, 1e-12)


def increase_in_confidence(
    model: Scorer | HasScorer, x: np.ndarray, maps: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Per input 1 where O > Y (strictly); Increase in Confidence % is 100 x their mean."""
    original, explained = confidence_change(model, x, maps, classes)
    return (explained > original).astype(np.float64)


def win_indicators(drops: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per method and input 1 where that method alone has the lowest drop; per input 1 for a tie.

    Inputs where two or more methods share the lowest drop count for none of them.
    """
    names = list(drops)
    table = np.stack([np.asarray(drops[n], np.float64) for n in names])
    winners = table == table.min(axis=0)
    unique = winners.sum(axis=0) == 1
    wins = {n: (winners[i] & unique).astype(np.float64) for i, n in enumerate(names)}
    return wins, (~unique).astype(np.float64)


def win_rate(drops: dict[str, np.ndarray]) -> tuple[dict[str, float], float]:
    """Share of inputs on which each method has the strictly lowest drop, and the tie share."""
    wins, ties = win_indicators(drops)
    return {n: float(w.mean()) for n, w in wins.items()}, float(ties.mean())
