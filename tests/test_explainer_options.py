"""The explainer graph's options against the engine: a target class per row (-1: the top one),
maps of every class at once, maps as uint8; and the Triton config of such a graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxcam
from onnxcam.cli import main
from onnxcam.engine.runner import open_session
from onnxcam.serving.explainer import build_explainer

METHODS = ("score-cam", "ablation-cam", "recipro-cam")
X = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def host(resnet_onnx):
    return onnxcam.Explainer(resnet_onnx, progress=False)


@pytest.mark.parametrize("method", METHODS)
def test_target_input_explains_the_given_class_or_the_top_one(resnet_onnx, host, method):
    explainer = build_explainer(onnx.load(resnet_onnx), method, chunk=5, target_input=True)
    session = open_session(explainer)
    given = np.array([3, -1, 7], np.int64)
    _, targets, maps = session.run(None, {"input": X, "target_class": given})
    top = host.explain(X, method).targets
    assert targets.tolist() == [3, int(top[1]), 7]
    expected = host.explain(X, method, target=targets)
    assert np.abs(maps - expected.maps).max() <= 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_all_classes_at_once_equal_one_explanation_per_class(resnet_onnx, host, method):
    model = onnx.load(resnet_onnx)
    session = open_session(build_explainer(model, method, chunk=5, all_classes=True))
    _, _, maps = session.run(None, {"input": X})
    assert maps.shape == (3, 10, 32, 32)
    worst = max(
        np.abs(maps[:, c] - host.explain(X, method, target=c).maps).max() for c in range(10)
    )
    assert worst <= 1e-4
    coded = open_session(build_explainer(model, method, chunk=5, all_classes=True, uint8=True))
    _, _, small = coded.run(None, {"input": X})
    assert small.dtype == np.uint8
    assert np.abs(small.astype(np.int16) - np.round(maps * 255)).max() <= 1


def test_triton_config_declares_the_target_input_and_uint8_maps(tmp_path, resnet_onnx):
    argv = ["export-explainer", str(resnet_onnx), "--triton-repo", str(tmp_path / "repo")]
    assert main([*argv, "--target-input", "--all-classes", "--uint8"]) == 0
    text = (tmp_path / "repo" / "explainer" / "config.pbtxt").read_text()
    assert 'name: "target_class"\n    data_type: TYPE_INT64\n    dims: [ 1 ]' in text
    assert "reshape: { shape: [ ] }" in text
    assert 'name: "map"\n    data_type: TYPE_UINT8\n    dims: [ 10, 32, 32 ]' in text
