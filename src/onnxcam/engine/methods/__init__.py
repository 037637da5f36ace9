"""The explanation methods; importing this package registers them all."""

from onnxcam.engine.methods import eigen_cam, feature_space, input_space, score_cam
from onnxcam.engine.methods.base import (
    ChannelWeightMethod,
    Context,
    Method,
    MethodOutput,
    create,
    methods,
    register,
)

__all__ = [
    "ChannelWeightMethod",
    "Context",
    "Method",
    "MethodOutput",
    "create",
    "eigen_cam",
    "feature_space",
    "input_space",
    "methods",
    "register",
    "score_cam",
]
