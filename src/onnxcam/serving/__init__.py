"""Explanations served next to the model: the explainer as one ONNX graph, and a Triton
model repository for it."""

from onnxcam.serving.explainer import DEFAULT_CHUNK, METADATA_KEY, METHODS, build_explainer
from onnxcam.serving.triton import INSTANCE_KINDS, config_text, write_repository

__all__ = [
    "DEFAULT_CHUNK",
    "INSTANCE_KINDS",
    "METADATA_KEY",
    "METHODS",
    "build_explainer",
    "config_text",
    "write_repository",
]
