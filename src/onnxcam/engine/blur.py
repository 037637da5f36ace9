"""Separable filters of model inputs along their spatial axes: Group-CAM's blurred baseline
and RISE's insertion substrate."""

from __future__ import annotations

import numpy as np

from onnxcam.errors import ArgumentError


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps centred on size // 2 (kornia's `get_gaussian_kernel1d`)."""
    offsets = np.arange(size) - size // 2
    taps = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def separable_filter(x: np.ndarray, taps: np.ndarray, mode: str = "reflect") -> np.ndarray:
    """Correlate (N, C, *S) with the same odd-length taps along each spatial axis, borders
    padded by numpy's `mode` ('reflect' mirrors, 'constant' pads zeros)."""
    out = x.astype(np.float64)
    half = len(taps) // 2
    for axis in range(2, x.ndim):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (half, half)
        padded = np.pad(out, widths, mode=mode)
        length = out.shape[axis]
        out = sum(
            weight * np.take(padded, np.arange(k, k + length), axis=axis)
            for k, weight in enumerate(taps)
        )
    return out.astype(np.float32)


def gaussian_blur(x: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Blur (N, C, *S) separably along each spatial axis, borders mirrored ('reflect')."""
    if size < 1 or size % 2 == 0 or sigma <= 0:
        raise ArgumentError(f"blur size must be odd and >= 1 and sigma > 0, got {size}, {sigma}")
    return separable_filter(x, gaussian_kernel(size, sigma), "reflect")
