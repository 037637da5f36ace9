"""Load every per-call kernel once, on tiny inputs: Numba reads compiled kernels from its
cache (or compiles them) and starts its thread pool on first use, which would otherwise fall
on an Explainer's first call."""

from __future__ import annotations

from functools import cache

import numpy as np

from onnxcam.kernels.combine import weighted_sum
from onnxcam.kernels.masks import masked_inputs
from onnxcam.kernels.normalize import minmax_normalize
from onnxcam.kernels.resize import resize, resize_normalize
from onnxcam.kernels.spread import map_spread


@cache
def warm_kernels() -> None:
    """Run each kernel once on 1-D and 2-D maps (once per process)."""
    for spatial in ((2,), (2, 2)):
        maps = np.ones((1, *spatial), np.float32)
        size = tuple(2 * s for s in spatial)
        resize(maps, size)
        resize_normalize(maps, size)
        minmax_normalize(maps)
        activations = np.ones((1, 1, *spatial), np.float32)
        weighted_sum(activations, np.ones((1, 1)))
        map_spread(activations)
        x = np.ones((1, 1, *size), np.float32)
        index = np.zeros(1, np.int64)
        masked_inputs(x, activations, index, index, np.empty_like(x))
