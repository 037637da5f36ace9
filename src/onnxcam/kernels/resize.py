"""Linear (1-D) and bilinear (2-D) resizing of stacks of maps.

Both follow PyTorch's `F.interpolate` exactly (algorithms §1.2): for one axis of length n resized to
m, `align_corners=False` samples at `max(0, (o + 0.5) * n / m - 0.5)` and `align_corners=True`
at `o * (n - 1) / (m - 1)`. A 1-D map is handled as a 2-D map of height 1, whose row table is the
identity, so every caller is free of 1-D/2-D special cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numba import prange

from onnxcam.kernels._jit import jit, threads_for
from onnxcam.kernels.normalize import normalize_in_place


def axis_table(n_in: int, n_out: int, align_corners: bool) -> tuple[np.ndarray, ...]:
    """Source indices (i0, i1) and weights of i1 for each output index along one axis."""
    o = np.arange(n_out, dtype=np.float64)
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = o * scale
    else:
        src = np.maximum((o + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(np.float32)
    return i0, i1, lam


def as_2d_maps(maps: np.ndarray) -> np.ndarray:
    """View (M, T) as (M, 1, T) and keep (M, H, W); anything else is an error."""
    if maps.ndim == 2:
        return maps[:, None, :]
    if maps.ndim == 3:
        return maps
    raise ValueError(f"expected maps of shape (M, T) or (M, H, W), got {maps.shape}")


@lru_cache(maxsize=64)
def tables_2d(
    size_in: tuple[int, int], size_out: tuple[int, int], align_corners: bool
) -> tuple[np.ndarray, ...]:
    """Row and column tables for a (h, w) -> (H, W) resize, shared by the calls of the last 64
    size pairs (the kernels only read them)."""
    return axis_table(size_in[0], size_out[0], align_corners) + axis_table(
        size_in[1], size_out[1], align_corners
    )


@jit(inline="always")
def resize_one(src, y0, y1, ly, x0, x1, lx, out):  # pragma: no cover - compiled
    """Resize one (h, w) map into `out` (H, W): columns first, then rows."""
    h = src.shape[0]
    H, W = out.shape
    rows = np.empty((h, W), np.float32)
    for r in range(h):
        for o in range(W):
            a = src[r, x0[o]]
            rows[r, o] = a + lx[o] * (src[r, x1[o]] - a)
    for i in range(H):
        r0 = y0[i]
        r1 = y1[i]
        lam = ly[i]
        for o in range(W):
            a = rows[r0, o]
            out[i, o] = a + lam * (rows[r1, o] - a)


@jit(parallel=True)
def _resize_normalize_stack(src, y0, y1, ly, x0, x1, lx, eps, out, constant):  # pragma: no cover
    for m in prange(src.shape[0]):
        resize_one(src[m], y0, y1, ly, x0, x1, lx, out[m])
        constant[m] = normalize_in_place(out[m], eps)


@jit(parallel=True)
def _resize_stack(src, y0, y1, ly, x0, x1, lx, out):  # pragma: no cover - compiled
    for m in prange(src.shape[0]):
        resize_one(src[m], y0, y1, ly, x0, x1, lx, out[m])


def resize(maps: np.ndarray, size: Sequence[int], align_corners: bool = False) -> np.ndarray:
    """Resize a stack of maps (M, *spatial) to (M, *size); spatial rank 1 or 2."""
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    size = tuple(int(s) for s in size)
    if len(size) != maps.ndim - 1:
        raise ValueError(f"size {size} does not match maps of shape {maps.shape}")
    src = as_2d_maps(maps)
    size_2d = (1, *size) if len(size) == 1 else size
    out = np.empty((src.shape[0], *size_2d), np.float32)
    with threads_for(out.size):
        _resize_stack(src, *tables_2d(src.shape[1:], size_2d, align_corners), out)
    return out.reshape(maps.shape[0], *size)


def resize_normalize(
    maps: np.ndarray, size: Sequence[int], align_corners: bool = False, eps: float = 1e-8
) -> tuple[np.ndarray, np.ndarray]:
    """Resize then min-max normalise each map, fused: one pass over the output.

    Returns the maps (M, *size) in [0, 1] and a boolean (M,) array marking constant maps.
    """
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    size = tuple(int(s) for s in size)
    src = as_2d_maps(maps)
    size_2d = (1, *size) if len(size) == 1 else size
    out = np.empty((src.shape[0], *size_2d), np.float32)
    constant = np.empty(src.shape[0], np.bool_)
    tables = tables_2d(src.shape[1:], size_2d, align_corners)
    with threads_for(out.size):
        _resize_normalize_stack(src, *tables, np.float32(eps), out, constant)
    return out.reshape(maps.shape[0], *size), constant


def resize_reference(maps: np.ndarray, size: Sequence[int], align_corners: bool = False):
    """Plain NumPy resize, the reference the kernel is tested against."""
    maps = np.asarray(maps, dtype=np.float64)
    out = maps
    for axis, m in enumerate(size, start=1):
        i0, i1, lam = axis_table(out.shape[axis], m, align_corners)
        shape = [1] * out.ndim
        shape[axis] = m
        lam = lam.astype(np.float64).reshape(shape)
        out = np.take(out, i0, axis=axis) * (1 - lam) + np.take(out, i1, axis=axis) * lam
    return out.astype(np.float32)
