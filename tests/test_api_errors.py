"""Bad input gets an error that names what was expected and what came."""

from __future__ import annotations

import numpy as np
import pytest

from onnxcam import Explainer, methods
from onnxcam.errors import InputError, TargetError


@pytest.fixture(scope="module")
def explainer(resnet_onnx):
    return Explainer(resnet_onnx, progress=False)


def good() -> np.ndarray:
    return np.zeros((1, 3, 32, 32), np.float32) + np.linspace(0, 1, 32, dtype=np.float32)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (
            np.zeros((3, 32, 32), np.float32),
            r"expected input of rank 4 \(N, C, H, W\), got shape \(3, 32, 32\)",
        ),
        (
            np.zeros((1, 4, 32, 32), np.float32),
            r"expected input shape \('N', 3, 32, 32\), got \(1, 4, 32, 32\)",
        ),
        (np.zeros((1, 3, 32, 32), np.float64), "expected dtype float32, got float64"),
        (np.zeros((1, 3, 32, 32), np.int64), "expected dtype float32, got int64"),
        (np.zeros((0, 3, 32, 32), np.float32), "empty batch"),
        ([[1.0]], "expected a numpy array, got list"),
    ],
)
def test_malformed_inputs(explainer, x, message):
    with pytest.raises(InputError, match=message):
        explainer.explain(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(explainer, bad):
    x = np.concatenate([good(), good()])
    x[1, 2, 5, 5] = bad
    with pytest.raises(InputError, match=r"NaN or Inf \(inputs \[1\]\)"):
        explainer.explain(x)


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (10, TargetError, r"class index 10 out of range: the model has 10 classes \(0..9\)"),
        (-1, TargetError, "class index -1 out of range"),
        ([1, 2], TargetError, "expected 1 target classes"),
        ("cat", TargetError, "target must be 'top1' or a class index"),
        (2.5, TargetError, "integer class index"),
    ],
)
def test_bad_targets(explainer, target, error, message):
    with pytest.raises(error, match=message):
        explainer.explain(good(), target=target)


def test_target_as_text_index(explainer):
    assert explainer.explain(good(), target="3").targets.tolist() == [3]


def test_unknown_method_and_option(explainer):
    assert "score-cam" in methods()
    with pytest.raises(ValueError, match="unknown method 'magic-cam'"):
        explainer.explain(good(), method="magic-cam")
    with pytest.raises(ValueError, match="unknown Score-CAM profile 'nope'"):
        explainer.explain(good(), profile="nope")
    with pytest.raises(ValueError, match="bad options for method 'score-cam'"):
        explainer.explain(good(), colour="red")


def test_bad_batch_size(resnet_onnx):
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        Explainer(resnet_onnx, batch_size=0)


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        (
            "score-cam",
            {"max_channels": "3"},
            "max_channels must be a positive integer or None, got '3'",
        ),
        ("ss-cam", {"n_samples": 2.5}, "n_samples must be a positive integer, got 2.5"),
        ("rise", {"n_masks": 0}, "n_masks must be a positive integer, got 0"),
        ("occlusion", {"patch": 0}, "patch must be a positive integer or None, got 0"),
        ("recipro-cam", {"gaussian": "false"}, "gaussian must be true or false, got 'false'"),
        ("is-cam", {"schedule": "log"}, "unknown IS-CAM schedule 'log': expected one of"),
    ],
)
def test_bad_method_options(explainer, method, options, message):
    with pytest.raises(ValueError, match=message):
        explainer.explain(good(), method=method, **options)
