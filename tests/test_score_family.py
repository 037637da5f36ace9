"""SS-CAM, IS-CAM and Faster Score-CAM against direct references on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
from toy_models import linear_onnx

from onnxcam import Explainer
from onnxcam.engine.methods.is_cam import ISCAM
from onnxcam.engine.methods.parts.channels import channel_softmax, top_std_channels

SHAPE = (4, 6, 5)
rng = np.random.default_rng(21)
V = rng.standard_normal((int(np.prod(SHAPE)), 3)) * 0.2
X = rng.standard_normal((2, *SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def explainer():
    return Explainer(linear_onnx(V, SHAPE), layer="x", progress=False, batch_size=5)


def masks_of(x: np.ndarray) -> np.ndarray:
    lo = x.min(axis=(1, 2), keepdims=True)
    return (x - lo) / (x.max(axis=(1, 2), keepdims=True) - lo + 1e-8)


def test_ss_cam_equals_reference_with_the_documented_noise(explainer):
    result = explainer.explain(X, method="ss-cam", n_samples=4, sigma=0.5, seed=9)
    for n in range(2):
        c, masks = result.targets[n], masks_of(X[n])
        scores = np.zeros(SHAPE[0])
        for k in range(SHAPE[0]):
            for s in range(4):
                noise = np.random.default_rng((9, k, s)).standard_normal(
                    SHAPE[1:], dtype=np.float32
                )
                scores[k] += (X[n] * (masks[k] + 0.5 * noise)).ravel() @ V[:, c] / 4
        np.testing.assert_allclose(result.weights[n], channel_softmax(scores[None])[0], atol=1e-5)
    assert result.metadata["passes_run"] == 2 * SHAPE[0] * 4


def test_ss_cam_without_noise_is_score_cam(explainer):
    plain = explainer.explain(X, method="score-cam")
    smooth = explainer.explain(X, method="ss-cam", n_samples=3, sigma=0.0)
    np.testing.assert_allclose(smooth.weights, plain.weights, atol=1e-6)


@pytest.mark.parametrize("schedule", ["linear", "cumulative"])
def test_is_cam_equals_reference(explainer, schedule):
    result = explainer.explain(X, method="is-cam", n_steps=5, schedule=schedule)
    coeff = ISCAM(n_steps=5, schedule=schedule).coefficients()
    for n in range(2):
        c, masks = result.targets[n], masks_of(X[n])
        scores = np.array(
            [np.mean([(a * X[n] * m).ravel() @ V[:, c] for a in coeff]) for m in masks]
        )
        np.testing.assert_allclose(result.weights[n], channel_softmax(scores[None])[0], atol=1e-5)


def test_is_cam_schedules():
    np.testing.assert_allclose(ISCAM(n_steps=4).coefficients(), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(
        ISCAM(n_steps=4, schedule="cumulative").coefficients(), [0.25, 0.75, 1.5, 2.5]
    )
    with pytest.raises(ValueError, match="schedule"):
        ISCAM(schedule="log")


def test_faster_score_cam_uses_the_top_std_channels(explainer):
    result = explainer.explain(X, method="faster-score-cam", max_channels=2)
    full = explainer.explain(X, method="score-cam")
    chosen = top_std_channels(X.reshape(*X.shape[:2], -1).std(axis=-1), 2)
    assert chosen.sum(axis=1).tolist() == [2, 2]
    for n in range(2):
        c = result.targets[n]
        scores = np.array([(X[n] * m).ravel() @ V[:, c] for m in masks_of(X[n])])
        want = channel_softmax(scores[None], chosen[n][None])[0]
        np.testing.assert_allclose(result.weights[n], want, atol=1e-5)
    assert result.metadata["passes_run"] == 4 and result.metadata["max_channels"] == 2
    assert np.abs(result.weights - full.weights).max() > 1e-3


def test_top_std_ties_prefer_lower_channels():
    acts = np.zeros((1, 4, 2, 2), np.float32)
    acts[0, 1, 0, 0] = acts[0, 3, 0, 0] = acts[0, 2, 0, 0] = 1.0
    assert top_std_channels(acts.reshape(1, 4, -1).std(axis=-1), 2)[0].tolist() == [
        False,
        True,
        True,
        False,
    ]


def test_top_std_channels_keep_what_a_stable_sort_keeps():
    rng = np.random.default_rng(3)
    for trial in range(200):
        n, k = int(rng.integers(1, 4)), int(rng.integers(2, 40))
        std = rng.integers(0, 4, (n, k)).astype(float) if trial % 2 else rng.random((n, k))
        keep = int(rng.integers(1, k))
        want = np.zeros((n, k), bool)
        order = np.argsort(-std, axis=1, kind="stable")[:, :keep]
        np.put_along_axis(want, order, True, axis=1)
        assert np.array_equal(top_std_channels(std, keep), want)


def test_channels_with_equal_normalised_maps_share_a_pass(explainer):
    x = X.copy()
    x[:, 3] = 2 * x[:, 1]  # the same map after min-max (exactly): the same masked input
    result = explainer.explain(x, method="score-cam")
    assert result.metadata["passes_shared"] == 2 and result.metadata["passes_run"] == 2 * 3
    for n in range(2):
        c = result.targets[n]
        scores = np.array([(x[n] * m).ravel() @ V[:, c] for m in masks_of(x[n])])
        np.testing.assert_allclose(result.weights[n], channel_softmax(scores[None])[0], atol=1e-5)
    noisy = explainer.explain(x, method="ss-cam", n_samples=2, sigma=0.1)
    assert noisy.metadata["passes_shared"] == 0  # noise differs per channel
