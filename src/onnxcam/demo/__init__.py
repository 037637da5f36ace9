"""`make demo`: a pretrained EfficientNet-Lite0 explains a photo shipped with scikit-image, and
an FCN trained on GunPoint explains time series. The small models and data sets it uses
(`ucr`, `fcn_torch`, `fcn_keras`) serve the tests and benchmarks too; the framework modules
import torch or keras at their top, so import them only where that framework is wanted."""

from onnxcam.demo.cache import cache_dir
from onnxcam.demo.efficientnet import (
    DEMO_PREPROCESS,
    demo_photo,
    efficientnet_lite0,
    efficientnet_lite0_onnx,
)
from onnxcam.demo.gunpoint import DEMO_SERIES, gunpoint_fcn_onnx, run_timeseries_demo
from onnxcam.demo.run import run_demo

__all__ = [
    "DEMO_PREPROCESS",
    "DEMO_SERIES",
    "cache_dir",
    "demo_photo",
    "efficientnet_lite0",
    "efficientnet_lite0_onnx",
    "gunpoint_fcn_onnx",
    "run_demo",
    "run_timeseries_demo",
]
