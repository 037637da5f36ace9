"""Weighted channel sum of activations, optionally followed by ReLU: sum_k w_k A^k."""

from __future__ import annotations

import numpy as np
from numba import prange

from onnxcam.kernels._jit import jit, threads_for


@jit(parallel=True)
def _weighted_sum(acts, weights, relu, out):  # pragma: no cover - compiled
    for n in prange(acts.shape[0]):
        acc = np.zeros(acts.shape[2], np.float64)
        for k in range(acts.shape[1]):
            w = weights[n, k]
            if w != 0:
                for i in range(acts.shape[2]):
                    acc[i] += w * acts[n, k, i]
        for i in range(acts.shape[2]):
            v = acc[i]
            out[n, i] = max(v, 0.0) if relu else v


def weighted_sum(activations: np.ndarray, weights: np.ndarray, relu: bool = True) -> np.ndarray:
    """(N, K, *spatial) activations and (N, K) weights -> (N, *spatial) maps."""
    acts = np.ascontiguousarray(activations, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.shape != acts.shape[:2]:
        raise ValueError(f"weights of shape {weights.shape} do not match activations {acts.shape}")
    flat = acts.reshape(acts.shape[0], acts.shape[1], -1)
    out = np.empty((acts.shape[0], flat.shape[2]), np.float32)
    with threads_for(flat.size):
        _weighted_sum(flat, weights, relu, out)
    return out.reshape(acts.shape[0], *acts.shape[2:])


def weighted_sum_reference(activations: np.ndarray, weights: np.ndarray, relu: bool = True):
    """Plain NumPy weighted channel sum, the kernel's reference."""
    maps = np.einsum("nk...,nk->n...", activations.astype(np.float64), weights)
    return (np.maximum(maps, 0) if relu else maps).astype(np.float32)
