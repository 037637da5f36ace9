"""Eigen-CAM (Muhammad & Yeasin 2020, spec §2.6): the activations' first principal component.

Per image, the (positions x channels) matrix is centred over positions (as pytorch-grad-cam
does) and projected on its first right singular vector. The SVD's sign is arbitrary, so it is
fixed: `sign="mean"` (default) makes the projection correlate positively with the channel sum,
`sign="maxabs"` flips it when |min| > |max|, `sign="none"` keeps LAPACK's.
"""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, Method, MethodOutput, register
from onnxcam.engine.postprocess import PostProcess, finish_maps

SIGNS = ("mean", "maxabs", "none")


def first_component(activations: np.ndarray, sign: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """(projection (*s), vector (K,)) of one image's centred (positions, K) activations."""
    matrix = np.nan_to_num(activations.reshape(activations.shape[0], -1).T.astype(np.float64))
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    vector = vt[0]
    projection = centred @ vector
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
