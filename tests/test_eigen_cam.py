"""Eigen-CAM: the golden projection of algorithms §4 and pytorch-grad-cam's formula, up to sign."""

from __future__ import annotations

import numpy as np
import pytest

from onnxcam import Explainer
from onnxcam.engine.methods.eigen_cam import first_component, first_singular_pair

A = np.array([[[1, 0], [0, 1]], [[1, 2], [2, 0]], [[1, 1], [1, 1]]], np.float64)


def test_golden_projection_up_to_sign():
    projection, vector = first_component(A, sign="none")
    want_v = np.array([-0.498061, 0.867142, 0])
    want_p = np.array([[-0.465816, 0.899387], [0.899387, -1.332958]])
    s = np.sign(vector @ want_v)
    np.testing.assert_allclose(s * vector, want_v, atol=1e-6)
    np.testing.assert_allclose(s * projection, want_p, atol=1e-6)


@pytest.mark.parametrize("sign", ["mean", "maxabs"])
def test_sign_rules(sign):
    projection, _ = first_component(A, sign=sign)
    total = A.sum(axis=0)
    if sign == "mean":
        assert np.sum(projection * (total - total.mean())) > 0
    else:
        assert abs(projection.min()) <= abs(projection.max())


def pgc_projection(acts: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's get_2d_projection for one image."""
    reshaped = acts.reshape(acts.shape[0], -1).T
    reshaped = reshaped - reshaped.mean(axis=0)
    _, _, vt = np.linalg.svd(reshaped, full_matrices=True)
    return (reshaped @ vt[0, :]).reshape(acts.shape[1:])


def test_maps_follow_the_pgc_projection(resnet_onnx, images):
    explainer = Explainer(resnet_onnx, layer="layer2", progress=False)
    result = explainer.explain(images, method="eigen-cam", sign="maxabs")
    _, acts = explainer.forward(images)
    for n in range(3):
        want = pgc_projection(acts[n].astype(np.float64))
        if abs(want.min()) > abs(want.max()):
            want = -want
        np.testing.assert_allclose(result.raw[n], np.maximum(want, 0), atol=1e-4)
    assert result.metadata["passes_run"] == 0


@pytest.mark.parametrize("shape", [(49, 1280), (64, 16), (9, 9)])
def test_first_singular_pair_equals_the_svd(shape):
    matrix = np.random.default_rng(1).normal(size=shape)
    centred = matrix - matrix.mean(axis=0)
    projection, vector = first_singular_pair(centred)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    s = np.sign(vector @ vt[0])
    np.testing.assert_allclose(s * vector, vt[0], atol=1e-10)
    np.testing.assert_allclose(s * projection, centred @ vt[0], atol=1e-9)
    assert np.linalg.norm(projection) == pytest.approx(singular[0])


def test_first_singular_pair_of_a_constant_matrix_is_a_zero_projection():
    projection, vector = first_singular_pair(np.zeros((4, 10)))
    assert not projection.any() and np.linalg.norm(vector) == 1
