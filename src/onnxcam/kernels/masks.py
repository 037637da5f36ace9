"""Masked inputs for Score-CAM-style methods, built in one pass per mask.

For each (image n, channel k) pair, the activation map A[n, k] is resized to the input size,
min-max normalised to [0, 1] (after resizing, as the paper does) and multiplied into every
input channel of X[n]. Writing straight into a caller's buffer keeps memory at one batch.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from onnxcam.kernels._jit import jit
from onnxcam.kernels.normalize import minmax_normalize_reference, normalize_in_place
from onnxcam.kernels.resize import as_2d_maps, resize_one, resize_reference, tables_2d


@jit(parallel=True)
def _masked_products(
    x, acts, images, channels, y0, y1, ly, x0, x1, lx, eps, out
):  # pragma: no cover
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for b in prange(images.shape[0]):
        n = images[b]
        if channels[b] < 0:
            out[b] = 0
            continue
        mask = np.empty((H, W), np.float32)
        resize_one(acts[n, channels[b]], y0, y1, ly, x0, x1, lx, mask)
        normalize_in_place(mask, eps)
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    out[b, c, i, j] = x[n, c, i, j] * mask[i, j]


def masked_inputs(
    x: np.ndarray,
    activations: np.ndarray,
    images: np.ndarray,
    channels: np.ndarray,
    out: np.ndarray,
    align_corners: bool = False,
    eps: float = 1e-8,
) -> np.ndarray:
    """Fill out[:B] with X[images[b]] * s(Up(A[images[b], channels[b]])) for b < B.

    x: (N, C, *S) float32, activations: (N, K, *s), S and s of rank 1 or 2; out: (>=B, C, *S).
    A constant map gives a zero mask, and so does channel -1 (a zero input). Returns out[:B].
    """
    n_items = len(images)
    spatial = x.shape[2:]
    x4 = x.reshape(x.shape[0], x.shape[1], *as_2d_maps(x[0]).shape[1:])
    a4 = activations.reshape(
        activations.shape[0], activations.shape[1], *as_2d_maps(activations[0]).shape[1:]
    )
    o4 = out.reshape(out.shape[0], *x4.shape[1:])
    tables = tables_2d(a4.shape[2:], x4.shape[2:], align_corners)
    _masked_products(
        x4,
        a4,
        np.ascontiguousarray(images, np.int64),
        np.ascontiguousarray(channels, np.int64),
        *tables,
        np.float32(eps),
        o4[:n_items],
    )
    return out[:n_items].reshape(n_items, x.shape[1], *spatial)


def masked_inputs_reference(x, activations, images, channels, align_corners=False, eps=1e-8):
    """Plain NumPy version of `masked_inputs`, the kernel's reference."""
    maps = activations[images, channels]
    up = resize_reference(maps, x.shape[2:], align_corners)
    masks, _ = minmax_normalize_reference(up, eps)
    masks[np.asarray(channels) < 0] = 0
    return (x[images].astype(np.float64) * masks[:, None]).astype(np.float32)
