"""Eigen-CAM (Muhammad & Yeasin 2020, spec §2.6): the activations' first principal component.

Per image, the (positions x channels) matrix is centred over positions (as pytorch-grad-cam
does) and projected on its first right singular vector. The SVD's sign is arbitrary, so it is
fixed: `sign="mean"` (default) makes the projection correlate positively with the channel sum,
`sign="maxabs"` flips it when |min| > |max|, `sign="none"` keeps LAPACK's.

The first singular pair comes from the eigendecomposition of the smaller Gram matrix (49 x 49
for a 7 x 7 layer, whatever K is) instead of an SVD of the whole matrix: the same vectors
(tests/test_eigen_cam.py), a far smaller LAPACK call, none to stall when ORT holds the cores.
"""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, Method, MethodOutput, register
from onnxcam.engine.postprocess import PostProcess, finish_maps

SIGNS = ("mean", "maxabs", "none")


def first_singular_pair(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centred @ v, v) for the first right singular vector v of a (P, K) matrix."""
    positions, channels = centred.shape
    if channels <= positions:
        _, vectors = np.linalg.eigh(centred.T @ centred)
        vector = vectors[:, -1]
        return centred @ vector, vector
    values, vectors = np.linalg.eigh(centred @ centred.T)
    left, sigma = vectors[:, -1], np.sqrt(max(values[-1], 0.0))
    if sigma == 0:  # all positions equal: every direction is as good, the projection is 0
        return np.zeros(positions), np.eye(channels)[0]
    return sigma * left, centred.T @ left / sigma


def first_component(activations: np.ndarray, sign: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """(projection (*s), vector (K,)) of one image's centred (positions, K) activations."""
    matrix = np.nan_to_num(activations.reshape(activations.shape[0], -1).T.astype(np.float64))
    centred = matrix - matrix.mean(axis=0)
    projection, vector = first_singular_pair(centred)
    if sign == "mean":
        total = matrix.sum(axis=1)
        flip = np.dot(projection, total - total.mean()) < 0
    elif sign == "maxabs":
        flip = abs(projection.min()) > abs(projection.max())
    else:
        flip = False
    sign_factor = -1.0 if flip else 1.0
    return sign_factor * projection.reshape(activations.shape[1:]), sign_factor * vector


@register
class EigenCAM(Method):
    name = "eigen-cam"
    post = PostProcess()

    def __init__(self, sign: str = "mean") -> None:
        if sign not in SIGNS:
            raise ValueError(f"eigen-cam sign must be one of {SIGNS}, got {sign!r}")
        self.sign = sign

    def explain(self, ctx: Context) -> MethodOutput:
        parts = [first_component(a, self.sign) for a in ctx.activations]
        raw = np.maximum(np.stack([p for p, _ in parts]), 0).astype(np.float32)
        maps, constant = finish_maps(raw, ctx.input_size, self.post)
        metadata = {
            "sign": self.sign,
            "passes_run": 0,
            "passes_per_input": [0] * len(raw),
            "passes_skipped": 0,
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, np.stack([v for _, v in parts]), metadata)
