"""Time-series faithfulness: a PROVISIONAL protocol (algorithms §3.5), not Salience-CAM's algorithm.

The evaluation algorithm of the Salience-CAM paper could not be retrieved, so this is the generic
test the spec proposes in its place, labelled provisional wherever it is reported: rank the time
steps of each series by its map; for each level k (5 %, 10 %, ..., 50 %) replace the top k % of
the steps (all variables) by a substrate; record the classifier's accuracy over the whole set and
the mean probability of the explained class. The same is done with a random ranking and with the
least relevant steps first (LeRF). A map is faithful when its most-relevant-first (MoRF) accuracy
curve falls faster, i.e. has a smaller area, than the random ranking's.

All perturbed series (series x orders x levels) go through `Runner.map_batches` together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onnxcam.engine.runner import Perturbation
from onnxcam.engine.scoring import HasScorer, Scorer, scorer_of
from onnxcam.errors import ArgumentError
from onnxcam.evaluation.metrics.causal import saliency_order
from onnxcam.evaluation.metrics.curves import auc

LEVELS = tuple(k / 100 for k in range(5, 55, 5))
ORDERS = ("morf", "lerf", "random")
SUBSTRATES = ("interpolate", "zero", "mean", "noise")


@dataclass(frozen=True)
class TimeSeriesFaithfulness:
    """Curves over `levels` (0 first: the unperturbed set) for each order (morf, lerf, random).

    accuracy: share of series classified as `labels` (or as the explained class without labels).
    probability: mean probability of the explained class. area: `auc` of each accuracy curve
    on a uniform grid (lower for MoRF is better). Provisional protocol (algorithms §3.5).
    """

    levels: np.ndarray
    accuracy: dict[str, np.ndarray]
    probability: dict[str, np.ndarray]
    substrate: str
    provisional: bool = True

    @property
    def area(self) -> dict[str, float]:
        return {order: auc(curve) for order, curve in self.accuracy.items()}

    @property
    def probability_area(self) -> dict[str, float]:
        return {order: auc(curve) for order, curve in self.probability.items()}


def rankings(maps: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """(N, T) time-step orders: MoRF (most salient first, ties by index), LeRF, and random."""
    morf = saliency_order(maps)
    rng = np.random.default_rng(seed)
    random = np.stack([rng.permutation(maps.shape[1]) for _ in range(len(maps))])
    return {"morf": morf, "lerf": morf[:, ::-1].copy(), "random": random}


def replace_steps(
    series: np.ndarray, removed: np.ndarray, substrate: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """series (C, T) with the time steps `removed` (indices) replaced in every variable.

    interpolate: linearly between the nearest kept steps (the nearest kept value at the ends);
    zero; mean: the variable's mean; noise: Gaussian with the variable's mean and std.
    """
    out = series.copy()
    if len(removed) == 0:
        return out
    if substrate == "interpolate":
        kept = np.setdiff1d(np.arange(series.shape[1]), removed, assume_unique=True)
        for c in range(len(series)):
            out[c, removed] = np.interp(removed, kept, series[c, kept])
    elif substrate == "zero":
        out[:, removed] = 0
    elif substrate == "mean":
        out[:, removed] = series.mean(axis=1, keepdims=True)
    elif substrate == "noise":
        mean, std = series.mean(axis=1, keepdims=True), series.std(axis=1, keepdims=True)
        out[:, removed] = mean + std * rng.standard_normal((len(series), len(removed)))
    else:
        raise ArgumentError(f"substrate must be one of {', '.join(SUBSTRATES)}, got {substrate!r}")
    return out


class StepRemoval(Perturbation):
    """Item (order, level, n): series n with its first `counts[level]` ranked steps replaced."""

    def __init__(self, x, ranks, counts, substrate: str, seed: int) -> None:
        self.x, self.ranks, self.counts = x, ranks, counts
        self.substrate, self.seed = substrate, seed
        self.n_items = len(ranks) * len(counts) * len(x)
        self.item_shape = x.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = out[: stop - start]
        for b, item in enumerate(range(start, stop)):
            order, rest = divmod(item, len(self.counts) * len(self.x))
            level, n = divmod(rest, len(self.x))
            removed = self.ranks[order][n, : self.counts[level]]
            rng = np.random.default_rng((self.seed, order, level, n))
            batch[b] = replace_steps(self.x[n], np.sort(removed), self.substrate, rng)
        return batch


def timeseries_faithfulness(
    model: Scorer | HasScorer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    labels: np.ndarray | None = None,
    levels: tuple[float, ...] = LEVELS,
    substrate: str = "interpolate",
    seed: int = 0,
) -> TimeSeriesFaithfulness:
    """Provisional time-series faithfulness (algorithms §3.5) of `maps` (N, T) for series x.

    x is given as to `explain` (the model's own layout); classes are the explained classes;
    labels (true classes) score the accuracy, else the explained classes do. Level k replaces
    int(k * T) time steps.
    """
    scorer = scorer_of(model)
    x = scorer.validate(x)
    if x.ndim != 3:
        raise ArgumentError(f"expected series (N, C, T), got inputs of shape {x.shape}")
    n, length = x.shape[0], x.shape[2]
    classes = np.asarray(classes)
    if maps.shape != (n, length) or classes.shape != (n,):
        raise ArgumentError(
            f"expected maps of shape {(n, length)} and {n} classes, got {maps.shape} and "
            f"{classes.shape}"
        )
    labels = classes if labels is None else np.asarray(labels)
    if labels.shape != (n,):
        raise ArgumentError(f"expected {n} labels, got shape {labels.shape}")
    if substrate not in SUBSTRATES:
        raise ArgumentError(f"substrate must be one of {', '.join(SUBSTRATES)}, got {substrate!r}")
    if not all(0 < k < 1 for k in levels):
        raise ArgumentError(f"levels must lie strictly between 0 and 1, got {levels}")
    grid = np.array([0.0, *levels])
    counts = [int(k * length) for k in grid]
    ranks = rankings(maps, seed)
    perturbation = StepRemoval(x, [ranks[o] for o in ORDERS], counts, substrate, seed)
    item_classes = np.tile(classes, len(ORDERS) * len(grid))
    predicted = np.empty(perturbation.n_items, np.int64)

    def keep_prediction(lo: int, hi: int, scores: np.ndarray, out: np.ndarray) -> None:
        predicted[lo:hi] = out.reshape(hi - lo, -1).argmax(axis=1)

    probs = scorer.score(
        perturbation, item_classes, "prob", "time-series faithfulness", keep_prediction
    )
    shape = (len(ORDERS), len(grid), n)
    correct = (predicted == np.tile(labels, len(ORDERS) * len(grid))).reshape(shape)
    probs = probs.reshape(shape)
    return TimeSeriesFaithfulness(
        grid,
        {o: correct[i].mean(axis=1) for i, o in enumerate(ORDERS)},
        {o: probs[i].mean(axis=1) for i, o in enumerate(ORDERS)},
        substrate,
    )
