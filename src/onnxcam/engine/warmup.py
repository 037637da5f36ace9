"""What one process pays once before its first explanation: the kernels loaded (Numba reads
them from its cache and starts its thread pool) and the BLAS libraries found, done when an
Explainer is built rather than on its first call."""

from __future__ import annotations

from onnxcam.engine import blas
from onnxcam.kernels.warm import warm_kernels


def warm_process() -> None:
    """Load the per-call kernels and find the BLAS libraries (once per process)."""
    warm_kernels()
    blas.controller()
