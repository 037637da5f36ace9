"""Several methods and metrics on one batch of inputs, summarised per method and metric as the
mean with a seeded percentile-bootstrap 95 % interval; written as CSV, Markdown and PNG plots."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from onnxcam.engine.methods import methods as registered_methods
from onnxcam.errors import ArgumentError
from onnxcam.evaluation.metrics.confidence import win_indicators
from onnxcam.evaluation.metrics.curves import Curves
from onnxcam.evaluation.metrics.registry import compute_metric, get_metric

if TYPE_CHECKING:
    from onnxcam.api import Explainer
    from onnxcam.engine.explanation import Explanation
    from onnxcam.engine.targets import Target

BOOTSTRAP_RESAMPLES = 10_000
LEVEL = 0.95
#: Derived from the drops of all methods when avg-drop runs for two or more of them.
WIN = "win"


def bootstrap_interval(
    values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, level: float = LEVEL, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean: `resamples` draws of n values with replacement."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ArgumentError(f"expected a non-empty 1-D array of values, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // len(values))  # bounds the index array to ~16 MB
    means = np.concatenate(
        [
            values[rng.integers(0, len(values), (min(chunk, resamples - i), len(values)))].mean(1)
            for i in range(0, resamples, chunk)
        ]
    )
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


@dataclass
class Row:
    method: str
    metric: str
    mean: float
    low: float
    high: float
    n: int
    higher_is_better: bool


@dataclass
class Evaluation:
    """Per-input values and curves per (method, metric), and the summary rows."""

    methods: list[str]
    metrics: list[str]
    names: list[str]
    values: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    curves: dict[tuple[str, str], Curves] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    ties: float | None = None  # share of inputs where the lowest drop is shared (Win %)
    resamples: int = BOOTSTRAP_RESAMPLES
    seed: int = 0
    explanations: dict[str, Explanation] = field(default_factory=dict)  # per method (report)


def _check_names(
    methods: Sequence[str],
    metrics: Sequence[str],
    method_options: dict[str, dict[str, Any]],
    metric_options: dict[str, dict[str, Any]],
) -> None:
    known = registered_methods()
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise ArgumentError(f"unknown method(s) {unknown or '(none given)'}: expected {known}")
    if not metrics:
        raise ArgumentError("expected at least one metric, got none")
    for name in metrics:
        get_metric(name)
    for kind, names, options in (
        ("method", methods, method_options),
        ("metric", metrics, metric_options),
    ):
        stray = sorted(set(options) - set(names))
        if stray:
            raise ArgumentError(f"options given for {kind}(s) {stray} that are not evaluated")


def evaluate(
    explainer: Explainer,
    x: np.ndarray,
    methods: Sequence[str],
    metrics: Sequence[str],
    method_options: dict[str, dict[str, Any]] | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    target: Target = None,
    names: Sequence[str] | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Evaluation:
    """Explain x with every method, score the maps with every metric, summarise.

    Names are checked before any work. Win % (share of inputs on which a method alone has the
    lowest Average Drop) joins the metrics when avg-drop runs for two or more methods.
    """
    method_options, metric_options = method_options or {}, metric_options or {}
    methods, metrics = list(dict.fromkeys(methods)), list(dict.fromkeys(metrics))
    _check_names(methods, metrics, method_options, metric_options)
    x = explainer.validate(x)
    names = list(names) if names is not None else [f"{i:04d}" for i in range(len(x))]
    result = Evaluation(methods, list(metrics), names, resamples=resamples, seed=seed)
    for method in tqdm(methods, desc="methods", unit="method", disable=not explainer.progress):
        started = time.perf_counter()
        explanation = explainer.explain(x, method, target, **method_options.get(method, {}))
        result.seconds[method] = time.perf_counter() - started
        result.explanations[method] = explanation
        for metric in metrics:
            out = compute_metric(
                metric,
                explainer,
                x,
                explanation.maps,
                explanation.targets,
                **metric_options.get(metric, {}),
            )
            result.values[method, metric] = out.values
            if out.curves is not None:
                result.curves[method, metric] = out.curves
    if "avg-drop" in metrics and len(methods) > 1:
        wins, ties = win_indicators({m: result.values[m, "avg-drop"] for m in methods})
        for method in methods:
            result.values[method, WIN] = 100 * wins[method]
        result.metrics.append(WIN)
        result.ties = 100 * float(ties.mean())
    for method in methods:
        for metric in result.metrics:
            values = result.values[method, metric]
            low, high = bootstrap_interval(values, resamples, LEVEL, seed)
            better = True if metric == WIN else get_metric(metric).higher_is_better
            result.rows.append(
                Row(method, metric, float(values.mean()), low, high, len(values), better)
            )
    return result
