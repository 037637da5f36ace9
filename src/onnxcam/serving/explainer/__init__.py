"""The explainer as one ONNX graph: Score-CAM, Ablation-CAM and ReciproCAM built in-graph."""

from onnxcam.serving.explainer.build import (
    DEFAULT_CHUNK,
    METADATA_KEY,
    METHODS,
    OUTPUTS,
    build_explainer,
)

__all__ = ["DEFAULT_CHUNK", "METADATA_KEY", "METHODS", "OUTPUTS", "build_explainer"]
