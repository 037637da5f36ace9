"""The SR map: LRP relevance, its |R| heatmap, then context-aware saliency; on images and series,
with a known answer on a model whose relevance lives in one region."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcam import ContextSaliency, Explainer, context_saliency
from onnxcam.engine.methods.sr_map import relevance_heatmap


def region_model(region):
    """Logits = W x on the flattened (3, 32, 32) input, class 0 reading only `region`."""
    weights = np.zeros((2, 3, 32, 32), np.float32)
    weights[0][(slice(None), *region)] = 1.0
    weights[1] = 0.01
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["act"]),  # a spatial layer for the Explainer
            helper.make_node("Flatten", ["act"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1),
        ],
        "region",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(weights.reshape(2, -1), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_relevance_in_one_region_makes_that_region_the_most_salient():
    region = (slice(6, 14), slice(18, 26))
    x = np.random.default_rng(0).uniform(0.2, 1.0, (2, 3, 32, 32)).astype(np.float32)
    explainer = Explainer(region_model(region), layer="act", progress=False)
    result = explainer.explain(x, method="sr-map", composite="epsilon", target=0)
    assert result.maps.shape == (2, 32, 32)
    for i in range(2):
        outside = np.ones((32, 32), bool)
        outside[region] = False
        assert not result.relevance[i][:, outside].any()  # x * w: zero where w is
        y, z = np.unravel_index(result.maps[i].argmax(), (32, 32))
        assert 5 <= y < 15 and 17 <= z < 27
        assert result.maps[i][region].mean() > 3 * result.maps[i][outside].mean()


@pytest.mark.parametrize("heatmap", ["channels", "sum"])
def test_sr_map_is_context_saliency_of_the_lrp_heatmap(resnet_onnx, images, heatmap):
    explainer = Explainer(resnet_onnx, layer="layer2", progress=False)
    options = {"composite": "sr-official", "k": 16, "threshold": 0.7}
    result = explainer.explain(images, method="sr-map", heatmap=heatmap, **options)
    lrp = explainer.explain(images, method="lrp", composite="sr-official")
    np.testing.assert_array_equal(result.relevance, lrp.relevance)
    np.testing.assert_allclose(result.raw, np.abs(lrp.relevance).sum(axis=1), rtol=1e-6)
    opts = ContextSaliency(k=16, threshold=0.7)
    for i, relevance in enumerate(lrp.relevance):
        heat = relevance_heatmap(relevance, heatmap)
        assert heat.shape[0] == (3 if heatmap == "channels" else 1) and heat.max() == 1
        magnitude = np.abs(relevance) if heatmap == "channels" else np.abs(relevance).sum(0)
        lo, hi = magnitude.min(), magnitude.max()
        np.testing.assert_allclose(
            heat.reshape(magnitude.shape), (magnitude - lo) / (hi - lo), atol=1e-6
        )
        np.testing.assert_allclose(result.maps[i], context_saliency(heat, opts)[0], atol=1e-6)
    assert result.metadata["composite"] == "sr-official"
    assert result.metadata["saliency_work_size"] == [[32, 32]] * len(images)


def test_sr_map_on_a_series(gunpoint, gunpoint_fcn):
    _, torch_path, _ = gunpoint_fcn
    x = gunpoint.x_test[:2]
    result = Explainer(torch_path, progress=False).explain(x, method="sr-map", heatmap="sum")
    assert result.maps.shape == (2, gunpoint.length) and result.relevance.shape == x.shape
    for i in range(2):
        heat = np.abs(result.relevance[i]).sum(axis=0, keepdims=True)
        want, _ = context_saliency((heat - heat.min()) / (heat.max() - heat.min()))
        np.testing.assert_allclose(result.maps[i], want, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"heatmap": "rgb"}, "unknown heatmap 'rgb': expected one of"),
        ({"patch": -1}, "patch must be a positive integer"),
        ({"radius": 3}, "bad options for method 'sr-map'"),
        ({"composite": "z-plus"}, "unknown LRP composite"),
    ],
)
def test_bad_options_are_refused(resnet_onnx, images, options, message):
    explainer = Explainer(resnet_onnx, layer="layer2", progress=False)
    with pytest.raises(ValueError, match=message):
        explainer.explain(images[:1], method="sr-map", **options)
