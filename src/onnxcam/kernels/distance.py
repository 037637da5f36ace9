"""Exact Euclidean distance transform: every pixel's distance to the nearest marked pixel.

Felzenszwalb and Huttenlocher's separable algorithm (lower envelope of parabolas), one pass
down the columns and one along the rows, each parallel over lines: O(H * W).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from onnxcam.kernels._jit import jit


@jit(inline="always")
def _squared_1d(f, out, v, z):  # pragma: no cover - compiled
    """out[q] = min_p (q - p)^2 + f[p] over the finite f[p]; inf where none is finite."""
    n = f.shape[0]
    k = -1
    for q in range(n):
        if not np.isfinite(f[q]):
            continue
        s = -np.inf
        while k >= 0:
            p = v[k]
            s = ((f[q] + q * q) - (f[p] + p * p)) / (2.0 * (q - p))
            if s > z[k]:
                break
            k -= 1
        if k < 0:
            s = -np.inf
        k += 1
        v[k] = q
        z[k] = s
    if k < 0:
        out[:] = np.inf
        return
    top = k
    k = 0
    for q in range(n):
        while k < top and z[k + 1] < q:
            k += 1
        p = v[k]
        out[q] = (q - p) * (q - p) + f[p]


@jit(parallel=True)
def _distance(mask, out):  # pragma: no cover - compiled
    h, w = mask.shape
    columns = np.empty((h, w), np.float64)
    for x in prange(w):
        f = np.empty(h, np.float64)
        for y in range(h):
            f[y] = 0.0 if mask[y, x] else np.inf
        line = np.empty(h, np.float64)
        _squared_1d(f, line, np.empty(h, np.int64), np.empty(h, np.float64))
        columns[:, x] = line
    for y in prange(h):
        line = np.empty(w, np.float64)
        _squared_1d(columns[y].copy(), line, np.empty(w, np.int64), np.empty(w, np.float64))
        for x in range(w):
            out[y, x] = np.sqrt(line[x])


def distance_to_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) or (T,) float64 distance of every element to the nearest True one (inf if none)."""
    mask = np.asarray(mask, dtype=np.bool_)
    if mask.ndim not in (1, 2):
        raise ValueError(f"expected a mask of shape (T,) or (H, W), got {mask.shape}")
    grid = np.ascontiguousarray(mask.reshape(1, -1) if mask.ndim == 1 else mask)
    out = np.empty(grid.shape, np.float64)
    _distance(grid, out)
    return out.reshape(mask.shape)
