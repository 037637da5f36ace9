"""Per-map min-max normalisation: (M - min) / (max - min + eps), constant maps -> zeros."""

from __future__ import annotations

import numpy as np
from numba import prange

from onnxcam.kernels._jit import jit, threads_for


@jit(parallel=True)
def _minmax_rows(x, eps, out, constant):  # pragma: no cover - compiled
    for m in prange(x.shape[0]):
        lo = x[m, 0]
        hi = x[m, 0]
        for i in range(1, x.shape[1]):
            v = x[m, i]
            if v < lo:
                lo = v
            elif v > hi:
                hi = v
        span = hi - lo
        constant[m] = span <= 0
        scale = np.float32(1.0) / (span + eps) if span > 0 else np.float32(0.0)
        for i in range(x.shape[1]):
            out[m, i] = (x[m, i] - lo) * scale


def minmax_normalize(maps: np.ndarray, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Normalise each map of a stack (M, *spatial) to [0, 1].

    Returns the normalised maps and a boolean (M,) array that marks constant maps, which come
    back as zeros whatever eps is (eps = 0 is allowed).
    """
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    rows = maps.reshape(maps.shape[0], -1)
    out = np.empty_like(rows)
    constant = np.empty(rows.shape[0], np.bool_)
    with threads_for(out.size):
        _minmax_rows(rows, np.float32(eps), out, constant)
    return out.reshape(maps.shape), constant


def minmax_normalize_reference(maps: np.ndarray, eps: float = 1e-8):
    """Plain NumPy min-max normalisation, the kernel's reference."""
    maps = np.asarray(maps, dtype=np.float64)
    axes = tuple(range(1, maps.ndim))
    lo = maps.min(axis=axes, keepdims=True)
    span = maps.max(axis=axes, keepdims=True) - lo
    constant = span.reshape(-1) <= 0
    scaled = np.where(span > 0, (maps - lo) / np.where(span > 0, span + eps, 1.0), 0.0)
    return scaled.astype(np.float32), constant
