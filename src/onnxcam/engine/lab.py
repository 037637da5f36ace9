"""sRGB -> CIE L*a*b* (D65 white), the colour space context-aware saliency compares patches in."""

from __future__ import annotations

import numpy as np

from onnxcam.errors import ArgumentError

#: Linear sRGB -> XYZ (D65), and the D65 reference white.
RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(3, *S) sRGB in [0, 1], channels first -> (3, *S) float64 L* in [0, 100], a*, b*."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape[:1] != (3,):
        raise ArgumentError(f"expected RGB channels first, shape (3, ...), got {rgb.shape}")
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.tensordot(RGB_TO_XYZ, linear, axes=1) / WHITE_D65.reshape(3, *[1] * (rgb.ndim - 1))
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])])
