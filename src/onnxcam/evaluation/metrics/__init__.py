"""Faithfulness metrics (algorithms §3), run through the same batched runner as the methods.

Each metric takes a Scorer (or an Explainer, which has one), the inputs x (N, C, *S), the maps
(N, *S) in [0, 1] and the explained classes, and returns one value per input. Perturbed inputs
of all images go through `Runner.map_batches` together, never one image at a time.
"""

from onnxcam.evaluation.metrics.causal import (
    PixelSteps,
    causal_curves,
    deletion,
    insertion,
    rise_blur,
    saliency_order,
    step_counts,
)
from onnxcam.evaluation.metrics.confidence import (
    average_drop,
    confidence_change,
    increase_in_confidence,
    win_indicators,
    win_rate,
)
from onnxcam.evaluation.metrics.curves import Curves, auc
from onnxcam.evaluation.metrics.pointing import (
    POINTING_TOLERANCE,
    energy_pointing_game,
    pointing_accuracy,
    pointing_game,
)
from onnxcam.evaluation.metrics.registry import (
    MetricSpec,
    MetricValues,
    compute_metric,
    get_metric,
    metric_names,
    register_metric,
)
from onnxcam.evaluation.metrics.road import (
    ROAD_FRACTIONS,
    noisy_linear_impute,
    road,
    road_curves,
)
from onnxcam.evaluation.metrics.timeseries import TimeSeriesFaithfulness, timeseries_faithfulness

__all__ = [
    "POINTING_TOLERANCE",
    "ROAD_FRACTIONS",
    "Curves",
    "MetricSpec",
    "MetricValues",
    "PixelSteps",
    "TimeSeriesFaithfulness",
    "auc",
    "average_drop",
    "causal_curves",
    "compute_metric",
    "confidence_change",
    "deletion",
    "energy_pointing_game",
    "get_metric",
    "increase_in_confidence",
    "insertion",
    "metric_names",
    "noisy_linear_impute",
    "pointing_accuracy",
    "pointing_game",
    "register_metric",
    "rise_blur",
    "road",
    "road_curves",
    "saliency_order",
    "step_counts",
    "timeseries_faithfulness",
    "win_indicators",
    "win_rate",
]
