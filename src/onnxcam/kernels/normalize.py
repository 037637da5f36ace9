"""Per-map min-max normalisation: (M - min) / (max - min + eps), constant maps -> zeros."""

from __future__ import annotations

import numpy as np
from numba import prange

from onnxcam.kernels._intrinsics import fmax, fmin
from onnxcam.kernels._jit import jit, threads_for

#: Lanes of the running minimum and maximum: LLVM vectorises an elementwise minnum over a row of
#: lanes under LLVM 14 and 22 alike, a reduction into one scalar only under recent LLVMs.
LANES = 64


@jit
def min_max(values):  # pragma: no cover - compiled
    """(min, max) of a non-empty contiguous 1-D array, NaNs skipped."""
    n = values.size
    width = min(n, LANES)
    full = n - n % width
    grid = values[:full].reshape(full // width, width)
    lo = grid[0].copy()
    hi = grid[0].copy()
    for i in range(1, grid.shape[0]):
        row = grid[i]
        for j in range(width):
            lo[j] = fmin(lo[j], row[j])
            hi[j] = fmax(hi[j], row[j])
    low, high = lo[0], hi[0]
    for j in range(1, width):
        low, high = fmin(low, lo[j]), fmax(high, hi[j])
    for t in range(full, n):
        low, high = fmin(low, values[t]), fmax(high, values[t])
    return low, high


@jit
def offset_scale(values, eps):  # pragma: no cover - compiled
    """(min, 1 / (max - min + eps) or 0 for a constant array, whether it is constant)."""
    lo, hi = min_max(values)
    span = hi - lo
    scale = np.float32(1.0) / (span + eps) if span > 0 else np.float32(0.0)
    return lo, scale, span <= 0


@jit
def normalize_into(values, eps, out):  # pragma: no cover - compiled
    """out = (values - min) / (max - min + eps) for contiguous 1-D arrays, zeros for a constant
    one; returns whether it was constant. out must not be values: the loop runs on SIMD
    registers only where the two do not overlap (normalize_in_place for that)."""
    lo, scale, constant = offset_scale(values, eps)
    for i in range(values.size):
        out[i] = (values[i] - lo) * scale
    return constant


@jit
def normalize_in_place(values, eps):  # pragma: no cover - compiled
    """`normalize_into` of a contiguous array of any rank into itself."""
    flat = values.reshape(values.size)
    lo, scale, constant = offset_scale(flat, eps)
    for i in range(flat.size):
        flat[i] = (flat[i] - lo) * scale
    return constant


@jit(parallel=True)
def _minmax_rows(x, eps, out, constant):  # pragma: no cover - compiled
    for m in prange(x.shape[0]):
        constant[m] = normalize_into(x[m], eps, out[m])


def minmax_normalize(maps: np.ndarray, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Normalise each map of a stack (M, *spatial) to [0, 1].

    Returns the normalised maps and a boolean (M,) array that marks constant maps, which come
    back as zeros whatever eps is (eps = 0 is allowed). Maps should be finite: a NaN is left out
    of its map's min and max and stays NaN.
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
