"""The table of metrics that `onnxcam evaluate` can run; a metric joins it by registering.

A registered metric maps (model, x, maps, classes, **options) to per-input values, and
optionally the curves they were read from (for the plots).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxcam.engine.scoring import HasScorer, Scorer
from onnxcam.errors import ArgumentError
from onnxcam.evaluation.metrics import causal, confidence, road
from onnxcam.evaluation.metrics.curves import Curves


@dataclass
class MetricValues:
    values: np.ndarray  # (N,) one value per input
    curves: Curves | None = None  # what the values were read from, where there is a curve


MetricFn = Callable[..., MetricValues]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    compute: MetricFn
    higher_is_better: bool
    description: str


_METRICS: dict[str, MetricSpec] = {}


def register_metric(
    name: str, higher_is_better: bool, description: str
) -> Callable[[MetricFn], MetricFn]:
    """Decorator: make `compute` available to `onnxcam evaluate --metrics <name>`."""

    def add(compute: MetricFn) -> MetricFn:
        _METRICS[name] = MetricSpec(name, compute, higher_is_better, description)
        return compute

    return add


def metric_names() -> list[str]:
    """Registered metric names, in registration order."""
    return list(_METRICS)


def get_metric(name: str) -> MetricSpec:
    if name not in _METRICS:
        raise ArgumentError(f"unknown metric {name!r}: expected one of {', '.join(_METRICS)}")
    return _METRICS[name]


def compute_metric(
    name: str,
    model: Scorer | HasScorer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    **options: Any,
) -> MetricValues:
    """Run the registered metric `name`; bad options give a ValueError naming the metric."""
    spec = get_metric(name)
    try:
        return spec.compute(model, x, maps, classes, **options)
    except TypeError as err:
        raise ArgumentError(f"bad options for metric {name!r}: {err}") from err


@register_metric("deletion", False, "area under the deletion curve (RISE)")
def _deletion(model, x, maps, classes, **options) -> MetricValues:
    curves = causal.causal_curves(model, x, maps, classes, "deletion", **options)
    return MetricValues(curves.areas(), curves)


@register_metric("insertion", True, "area under the insertion curve (RISE)")
def _insertion(model, x, maps, classes, **options) -> MetricValues:
    curves = causal.causal_curves(model, x, maps, classes, "insertion", **options)
    return MetricValues(curves.areas(), curves)


@register_metric("avg-drop", False, "Average Drop %: 100 max(0, Y - O) / Y")
def _average_drop(model, x, maps, classes) -> MetricValues:
    return MetricValues(100 * confidence.average_drop(model, x, maps, classes))


@register_metric("increase", True, "Increase in Confidence %: 100 [O > Y]")
def _increase(model, x, maps, classes) -> MetricValues:
    return MetricValues(100 * confidence.increase_in_confidence(model, x, maps, classes))


def _road(order: str) -> MetricFn:
    def compute(model, x, maps, classes, **options) -> MetricValues:
        if order == "combined":
            return MetricValues(road.road(model, x, maps, classes, order, **options))
        curves = road.road_curves(model, x, maps, classes, orders=(order,), **options)
        return MetricValues(curves[order].means(), curves[order])

    return compute


register_metric("road-morf", False, "ROAD, most relevant first: mean p over removal levels")(
    _road("morf")
)
register_metric("road-lerf", True, "ROAD, least relevant first: mean p over removal levels")(
    _road("lerf")
)
register_metric("road", True, "ROAD combined: (LeRF - MoRF) / 2")(_road("combined"))
