"""Eigen-CAM (Muhammad & Yeasin, IJCNN 2020, algorithms §2.6)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, Method, MethodOutput, passes
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice
from onnxcam.engine.postprocess import PostProcess, finish_maps

SIGNS = ("mean", "maxabs", "none")


def first_singular_pair(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centred @ v, v) for the first right singular vector v of a (P, K) matrix, from the
    eigendecomposition of the smaller Gram matrix (the same vectors as the SVD)."""
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
    """(projection (*s), vector (K,)) of one image's centred (positions, K) activations (finite:
    the forward pass checks them)."""
    centred = activations.reshape(activations.shape[0], -1).astype(np.float64)  # (K, P)
    total = centred.sum(axis=0)  # the channel sum per position, before centring in place
    centred -= centred.mean(axis=1, keepdims=True)
    projection, vector = first_singular_pair(centred.T)
    if sign == "mean":
        flip = np.dot(projection, total - total.mean()) < 0
    elif sign == "maxabs":
        flip = abs(projection.min()) > abs(projection.max())
    else:
        flip = False
    sign_factor = -1.0 if flip else 1.0
    return sign_factor * projection.reshape(activations.shape[1:]), sign_factor * vector


@register
class EigenCAM(Method):
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the activations' first principal component.

    Per image, the (positions x channels) matrix is centred over positions (as pytorch-grad-cam
    does) and projected on its first right singular vector; L = ReLU(projection). The SVD's sign
    is arbitrary: `mean` makes the projection correlate positively with the channel sum,
    `maxabs` flips it when |min| > |max|, `none` keeps LAPACK's. Class-agnostic.
    """

    name = "eigen-cam"
    passes = "0"

    sign: str = choice("mean", SIGNS, "how the SVD's sign is fixed", what="eigen-cam sign")

    def explain(self, ctx: Context) -> MethodOutput:
        parts = [first_component(a, self.sign) for a in ctx.activations]
        raw = np.maximum(np.stack([p for p, _ in parts]), 0).astype(np.float32)
        maps, constant = finish_maps(raw, ctx.input_size, PostProcess())
        metadata = {
            "sign": self.sign,
            **passes([0] * len(raw)),
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, np.stack([v for _, v in parts]), metadata)
