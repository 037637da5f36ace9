"""What one process, and one Explainer, pay once before the first explanation, done when an
Explainer is built rather than on its first call: the kernels loaded (Numba reads them from
its cache and starts its thread pool), the BLAS and LAPACK libraries found and started, and
each session's first runs (ONNX Runtime's first few runs of a session can be slower than later
ones; docs/design.md, "Latency")."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from onnxcam.engine import blas
from onnxcam.kernels.warm import warm_kernels

#: Runs of each session at construction, and the most seconds they may take in all.
SETTLE_RUNS = 5
SETTLE_SECONDS = 0.5


def warm_process() -> None:
    """Load the per-call kernels, find the BLAS libraries and start BLAS and LAPACK as the
    methods call them, on one thread (once per process: BLAS allocates its buffers on its
    first product, which would otherwise be a method's)."""
    warm_kernels()
    blas.controller()
    with blas.single_threaded():
        rows = np.ones((64, 256))
        _ = rows @ rows.T
        np.linalg.eigh(np.eye(2))


def settle(run: Callable[[], object]) -> None:
    """Run a session's call SETTLE_RUNS times, or fewer once SETTLE_SECONDS have passed."""
    started = time.perf_counter()
    for _ in range(SETTLE_RUNS):
        run()
        if time.perf_counter() - started > SETTLE_SECONDS:
            return
