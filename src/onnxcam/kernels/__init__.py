"""Numba kernels for the array work between inference passes; each has a NumPy reference."""

from onnxcam.kernels.combine import weighted_sum
from onnxcam.kernels.masks import masked_inputs
from onnxcam.kernels.normalize import minmax_normalize
from onnxcam.kernels.resize import resize, resize_normalize
from onnxcam.kernels.spread import map_spread

__all__ = [
    "map_spread",
    "masked_inputs",
    "minmax_normalize",
    "resize",
    "resize_normalize",
    "weighted_sum",
]
