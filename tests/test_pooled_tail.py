"""Tails that start with a global average pool: Ablation-CAM and ReciproCAM average their
perturbed activations first and run only the graph after the pool, on the host and in the
served graph, with the maps of the paper's algorithm run on the whole tail (torch references
on the full perturbed maps)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import references
import torch
from onnx import TensorProto, helper, numpy_helper

from onnxcam import Explainer
from onnxcam.engine.runner import open_session
from onnxcam.serving.explainer import build_explainer

CLASSES, CHANNELS, SIZE = 4, 6, 5


def pooled_model(pool: str, opset: int = 17) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """x (N, 3, 5, 5) -> Conv 3x3 -> Relu ("layer") -> `pool` -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    weights = {
        "w": rng.standard_normal((CHANNELS, 3, 3, 3)).astype(np.float32) * 0.5,
        "b": rng.standard_normal(CHANNELS).astype(np.float32) * 0.3,
        "fc": rng.standard_normal((CLASSES, CHANNELS)).astype(np.float32),
        "fb": rng.standard_normal(CLASSES).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["layer"]),
    ]
    extra = []
    if pool == "gap":
        nodes.append(helper.make_node("GlobalAveragePool", ["layer"], ["pooled"]))
    elif pool == "mean-attribute":
        nodes.append(helper.make_node("ReduceMean", ["layer"], ["pooled"], axes=[2, 3]))
    elif pool == "mean-input":  # opset 18: axes as an input, negative, not kept
        extra.append(numpy_helper.from_array(np.array([-1, -2], np.int64), "axes"))
        nodes.append(helper.make_node("ReduceMean", ["layer", "axes"], ["pooled"], keepdims=0))
    elif pool == "mean-constant":  # opset 18, axes from a Constant node (TorchScript's way)
        axes = numpy_helper.from_array(np.array([2, 3], np.int64))
        nodes.append(helper.make_node("Constant", [], ["axes"], value=axes))
        nodes.append(helper.make_node("ReduceMean", ["layer", "axes"], ["pooled"]))
    elif pool == "gap-reshape":  # GAP then view(n, -1) with a Constant shape
        shape = numpy_helper.from_array(np.array([-1, CHANNELS, 1, 1], np.int64))
        nodes.append(helper.make_node("GlobalAveragePool", ["layer"], ["mean"]))
        nodes.append(helper.make_node("Constant", [], ["shape"], value=shape))
        nodes.append(helper.make_node("Reshape", ["mean", "shape"], ["pooled"]))
    elif pool == "mean-one-axis":  # over the width, then GAP: the layer's reader is partial
        nodes.append(helper.make_node("ReduceMean", ["layer"], ["rows"], axes=[3]))
        nodes.append(helper.make_node("GlobalAveragePool", ["rows"], ["pooled"]))
    elif pool == "max":
        nodes.append(helper.make_node("GlobalMaxPool", ["layer"], ["pooled"]))
    elif pool == "two-readers":  # GAP of the layer plus the layer's own corner
        nodes += [
            helper.make_node("GlobalAveragePool", ["layer"], ["mean"]),
            helper.make_node("Slice", ["layer", "s0", "s1", "s2"], ["corner"]),
            helper.make_node("Add", ["mean", "corner"], ["pooled"]),
        ]
        extra += [
            numpy_helper.from_array(np.array([0, 0], np.int64), "s0"),
            numpy_helper.from_array(np.array([1, 1], np.int64), "s1"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "s2"),
        ]
    nodes += [
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc", "fb"], ["logits"], transB=1),
    ]
    g = helper.make_graph(
        nodes,
        "pooled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()] + extra,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)
    onnx.checker.check_model(model, full_check=True)
    return model, weights


def torch_parts(pool: str, weights: dict[str, np.ndarray]):
    """The model in torch, in float64: (x -> layer, layer -> logits) for the mean pools."""
    w = {k: torch.from_numpy(v).double() for k, v in weights.items()}

    def head(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.nn.functional.conv2d(x.double(), w["w"], w["b"], padding=1))

    def tail(a: torch.Tensor) -> torch.Tensor:
        pooled = a.mean((2, 3))
        if pool == "two-readers":
            pooled = pooled + a[:, :, 0, 0]
        return pooled.double() @ w["fc"].T + w["fb"]

    return head, tail


X = np.random.default_rng(1).standard_normal((3, 3, SIZE, SIZE)).astype(np.float32)


POOLS = [
    ("gap", 17),
    ("mean-attribute", 17),
    ("mean-input", 18),
    ("mean-constant", 18),
    ("gap-reshape", 17),
    ("two-readers", 17),
]


@pytest.mark.parametrize("pool, opset", POOLS)
@pytest.mark.parametrize("gaussian", [False, True])
def test_recipro_cam_on_the_pool_equals_the_paper_on_the_whole_tail(pool, opset, gaussian):
    model, weights = pooled_model(pool, opset)
    explainer = Explainer(model, layer="layer", progress=False)
    result = explainer.explain(X, method="recipro-cam", gaussian=gaussian)
    assert result.metadata["pooled"] is (pool != "two-readers")
    head, tail = torch_parts(pool, weights)
    acts = head(torch.from_numpy(X))
    want = references.recipro_cam(tail, acts, result.targets, gaussian)
    np.testing.assert_allclose(result.raw, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("pool, opset", POOLS)
@pytest.mark.parametrize("value", [0.0, 0.5])
def test_ablation_cam_on_the_pool_equals_ablating_the_whole_map(pool, opset, value):
    model, weights = pooled_model(pool, opset)
    result = Explainer(model, layer="layer", progress=False).explain(
        X, method="ablation-cam", value=value
    )
    assert result.metadata["pooled"] is (pool != "two-readers")
    head, tail = torch_parts(pool, weights)
    acts = head(torch.from_numpy(X))
    rows = np.arange(len(X))
    y = tail(acts)[rows, result.targets].numpy()
    want = np.zeros((len(X), CHANNELS))
    for k in range(CHANNELS):
        ablated = acts.clone()
        ablated[:, k] = value
        unchanged = (acts[:, k] == value).flatten(1).all(1).numpy()
        drop = y - tail(ablated)[rows, result.targets].numpy()
        want[:, k] = np.where(unchanged, 0, drop / y)
    np.testing.assert_allclose(result.weights, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "pool, found", [("gap", True), ("mean-one-axis", False), ("max", False), ("two-readers", False)]
)
def test_only_a_mean_over_every_position_read_alone_is_pooled(pool, found):
    model, _ = pooled_model(pool)
    explainer = Explainer(model, layer="layer", progress=False)
    assert (explainer.views.pooled is not None) is found
    result = explainer.explain(X, method="recipro-cam")
    assert result.metadata["pooled"] is found


@pytest.mark.parametrize("pool, opset", POOLS)
@pytest.mark.parametrize("method", ["ablation-cam", "recipro-cam"])
def test_the_served_graph_averages_first_and_keeps_the_hosts_maps(pool, opset, method):
    model, _ = pooled_model(pool, opset)
    served = build_explainer(model, method, "layer", chunk=4)
    (loop,) = [n for n in served.graph.node if n.op_type == "Loop"]
    (body,) = [a.g for a in loop.attribute if a.name == "body"]
    pools = {"GlobalAveragePool", "ReduceMean", "Conv"} & {n.op_type for n in body.node}
    assert bool(pools) is (pool == "two-readers")  # the pooled body runs only Flatten + Gemm
    session = open_session(served)
    logits, targets, maps = session.run(None, {session.get_inputs()[0].name: X})
    host = Explainer(model, layer="layer", progress=False).explain(X, method)
    assert host.metadata["pooled"] is (pool != "two-readers")
    assert np.array_equal(targets, host.targets)
    np.testing.assert_allclose(logits, host.logits, atol=1e-5)
    np.testing.assert_allclose(maps, host.maps, atol=1e-4)
    assert (maps.max(axis=(1, 2)) > 0.9).all()
