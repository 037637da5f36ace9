"""The explanation methods; importing this package registers them all."""

from onnxcam.engine.methods import (
    abs_cam,
    eigen_cam,
    feature_space,
    gradient,
    group_cam,
    input_space,
    lrp,
    salience_cam,
    score_cam,
    sr_map,
)
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
    "abs_cam",
    "create",
    "eigen_cam",
    "feature_space",
    "gradient",
    "group_cam",
    "input_space",
    "lrp",
    "methods",
    "register",
    "salience_cam",
    "score_cam",
    "sr_map",
]
