"""Ablation-CAM and ReciproCAM: golden values, analytic heads, tail-only equal to full model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import references
import torch
from toy_models import conv_gap_linear, hook_outputs, linear_onnx, scoped_tensor

from onnxcam import Explainer
from onnxcam.engine import graph
from onnxcam.engine.methods.recipro_cam import spread_kernel
from onnxcam.exporters import from_torch


def test_ablation_golden_weights():
    """Spec §4: y = 4, ablated scores [3, 1, 4.5] -> weights [0.25, 0.75, -0.125]."""
    contributions = np.array([1.0, 3.0, -0.5])  # per channel of an all-ones 3x2x2 input
    V = np.repeat(contributions / 4, 4)[:, None] * np.array([[1.0, 0.0]])
    model = linear_onnx(V, (3, 2, 2), bias=[0.5, 0.0])
    result = Explainer(model, layer="x", progress=False).explain(
        np.ones((1, 3, 2, 2), np.float32), method="ablation-cam", target=0
    )
    np.testing.assert_allclose(result.logits[0, 0], 4.0)
    np.testing.assert_allclose(result.weights[0], [0.25, 0.75, -0.125], atol=1e-6)


def test_ablation_on_gap_linear_head(resnet_model, resnet_onnx, images):
    """At the block before GAP + Linear: y - y_k = W[c, k] * mean(A^k)."""
    result = Explainer(resnet_onnx, layer="layer3", progress=False).explain(
        images, method="ablation-cam"
    )
    acts = hook_outputs(resnet_model, torch.from_numpy(images), ["layer3"])["layer3"].numpy()
    W = resnet_model.fc.weight.detach().numpy()
    y = result.logits[np.arange(3), result.targets]
    want = W[result.targets] * acts.mean(axis=(2, 3)) / y[:, None]
    np.testing.assert_allclose(result.weights, want, atol=1e-5)
    zero = (acts == 0).all(axis=(2, 3))  # dead channels: weight 0 and no pass
    assert result.metadata["passes_skipped"] == zero.sum() and np.all(result.weights[zero] == 0)


def test_tail_only_equals_full_model_with_a_skip_across_the_cut(resnet_onnx, images):
    inside = scoped_tensor(graph.load(resnet_onnx), "layer3.relu")
    explainer = Explainer(resnet_onnx, layer=inside, progress=False, batch_size=8)
    assert explainer.views.split.crossing
    tail = explainer.explain(images, method="ablation-cam")
    full = explainer.explain(images, method="ablation-cam", mode="full")
    assert tail.metadata["mode"] == "tail" and full.metadata["mode"] == "full"
    np.testing.assert_allclose(tail.weights, full.weights, atol=1e-5)
    np.testing.assert_allclose(tail.maps, full.maps, atol=1e-4)


@pytest.mark.parametrize("gaussian", [False, True])
def test_recipro_cam_equals_direct_reference(resnet_model, resnet_onnx, images, gaussian):
    result = Explainer(resnet_onnx, layer="layer3", progress=False).explain(
        images, method="recipro-cam", gaussian=gaussian
    )
    acts = hook_outputs(resnet_model, torch.from_numpy(images), ["layer3"])["layer3"]

    def tail(a: torch.Tensor) -> torch.Tensor:  # layer3 -> GAP -> fc
        return resnet_model.fc(torch.flatten(resnet_model.pool(a), 1))

    want = references.recipro_cam(tail, acts, result.targets, gaussian)
    np.testing.assert_allclose(result.raw, want, atol=1e-5)
    assert result.metadata["passes_run"] == 3 * 16
    assert result.maps.shape == (3, 32, 32) and abs(result.maps.max() - 1) < 1e-5


def test_spread_kernel_per_axis():
    np.testing.assert_allclose(spread_kernel(1), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(spread_kernel(2), np.outer([1, 2, 1], [1, 2, 1]) / 16)


def test_bad_ablation_mode(resnet_onnx, images):
    with pytest.raises(ValueError, match="unknown ablation-cam mode 'half': expected one of"):
        Explainer(resnet_onnx, progress=False).explain(images, method="ablation-cam", mode="half")


def test_recipro_on_one_dimensional_layer():
    """A 1-D model (N, C, T) -> Conv1d -> GAP -> Linear, explained at the conv output."""
    torch.manual_seed(0)
    net = conv_gap_linear(2, 5, 3, kernel=3, rank=1)
    proto = _export_1d(net)
    x = np.random.default_rng(0).standard_normal((2, 2, 20)).astype(np.float32)
    result = Explainer(proto, layer="1", progress=False).explain(x, method="recipro-cam")
    assert result.raw.shape == (2, 20) and result.maps.shape == (2, 20)
    with torch.no_grad():
        acts = net[:2](torch.from_numpy(x))
    want = references.recipro_cam(net[2:], acts, result.targets)
    np.testing.assert_allclose(result.raw, want, atol=1e-5)


def _export_1d(net: torch.nn.Module) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as tmp:
        result = from_torch(net, torch.randn(2, 2, 20), Path(tmp) / "m.onnx", layers=["1"])
        return onnx.load(str(result.path))
