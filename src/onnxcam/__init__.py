"""onnxcam: class activation maps for any ONNX classifier, through batched ONNX Runtime."""

from onnxcam import dataset, exporters
from onnxcam.api import Explainer, explain
from onnxcam.engine.context_saliency import ContextSaliency, context_saliency
from onnxcam.engine.explanation import Explanation
from onnxcam.engine.graph import LayerInfo
from onnxcam.engine.methods import methods
from onnxcam.errors import OnnxcamError
from onnxcam.evaluation import metrics

__version__ = "0.1.0"
__all__ = [
    "ContextSaliency",
    "Explainer",
    "Explanation",
    "LayerInfo",
    "OnnxcamError",
    "context_saliency",
    "dataset",
    "explain",
    "exporters",
    "methods",
    "metrics",
]
