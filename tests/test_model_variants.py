"""Model shapes and export styles seen in the wild: weights computed in-graph, flattened
spatial axes, initializers listed as inputs, (N, C, 1, 1) heads, a fixed batch of 1."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from toy_models import export_plain, linear_onnx, tiny_resnet

from onnxcam import Explainer
from onnxcam.engine import graph
from onnxcam.errors import ModelError

rng = np.random.default_rng(31)


def make(nodes, inits, in_shape, out_shape, opset=13):
    g = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def conv_model(head: str):
    """x -> Conv -> Relu (a) -> head; heads: 'gap' (GAP+Flatten+MatMul with in-graph Transpose),
    'flat' (reshape to (N, K, H*W) then mean), 'conv' (1x1 conv + GAP: (N, C, 1, 1) logits)."""
    inits = {"w": rng.standard_normal((6, 3, 3, 3)) * 0.5, "wt": rng.standard_normal((4, 6))}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["a"]),
    ]
    if head == "gap":
        nodes += [
            helper.make_node("GlobalAveragePool", ["a"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("Transpose", ["wt"], ["w2"], perm=[1, 0]),  # weights computed in-graph
            helper.make_node("MatMul", ["f", "w2"], ["logits"]),
        ]
        out = ["N", 4]
    elif head == "flat":
        inits["shape"] = np.array([0, 6, -1])
        nodes += [
            helper.make_node("Reshape", ["a", "shape_i"], ["r"]),
            helper.make_node("ReduceMean", ["r"], ["m"], axes=[2], keepdims=0),
            helper.make_node("MatMul", ["m", "w2"], ["logits"]),
        ]
        inits["w2"] = inits.pop("wt").T
        out = ["N", 4]
    else:
        inits["k"] = rng.standard_normal((4, 6, 1, 1))
        nodes += [
            helper.make_node("Conv", ["a", "k"], ["s"]),
            helper.make_node("GlobalAveragePool", ["s"], ["logits"]),
        ]
        out = ["N", 4, 1, 1]
    model = make(nodes, inits, ["N", 3, 8, 8], out, opset=17 if head != "flat" else 13)
    if head == "flat":
        model.graph.initializer.append(
            numpy_helper.from_array(np.array([0, 6, -1], np.int64), "shape_i")
        )
    return model


X = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)


def test_weights_computed_in_graph_go_to_the_tail():
    model = conv_model("gap")
    cut = graph.split(model, "a")
    assert cut.crossing == ()  # Transpose(wt) has no batch axis: recomputed in the tail
    explainer = Explainer(model, layer="a", progress=False)
    tail = explainer.explain(X, method="ablation-cam")
    full = explainer.explain(X, method="ablation-cam", mode="full")
    np.testing.assert_allclose(tail.weights, full.weights, atol=1e-5)
    recipro = explainer.explain(X, method="recipro-cam")
    assert recipro.raw.shape == (3, 8, 8)


def test_flattened_spatial_axes_are_not_a_2d_layer():
    model = conv_model("flat")
    assert graph.resolve_layer(model, "auto") == "a"
    assert "r" not in {info.name for info in graph.list_layers(model)}


def test_logits_of_shape_n_c_1_1():
    result = Explainer(conv_model("conv"), layer="a", progress=False).explain(X)
    assert result.logits.shape == (3, 4) and result.maps.shape == (3, 8, 8)
    rise = Explainer(conv_model("conv"), layer="a", progress=False).explain(
        X, method="rise", n_masks=16
    )
    assert rise.maps.shape == (3, 8, 8)


def with_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in (fixed.graph.input[0], fixed.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = batch
    return fixed


def test_fixed_batch_of_one_equals_dynamic_batch():
    model = conv_model("gap")
    fixed = Explainer(with_batch(model, 1), layer="a", progress=False)
    assert fixed.batch_size == 1
    dynamic = Explainer(model, layer="a", progress=False)
    for method in ("score-cam", "ablation-cam", "occlusion"):
        np.testing.assert_allclose(
            fixed.explain(X, method=method).maps, dynamic.explain(X, method=method).maps, atol=1e-5
        )


def test_fixed_batch_above_one_is_refused():
    with pytest.raises(ModelError, match="fixed batch of 4"):
        Explainer(with_batch(conv_model("gap"), 4), layer="a")


def test_initializers_listed_as_inputs(images):
    model = tiny_resnet(seed=6)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old.onnx"
        export_plain(model, path, (3, 32, 32), keep_initializers_as_inputs=True)
        proto = onnx.load(str(path))
    assert len(proto.graph.input) > 1
    # a Conv output that feeds a residual Add, exposed and used as the cut
    adds = {i for n in proto.graph.node if n.op_type == "Add" for i in n.input}
    layer = next(
        n.output[0] for n in proto.graph.node if n.op_type == "Conv" and n.output[0] in adds
    )
    explainer = Explainer(proto, layer=layer, progress=False)
    tail = explainer.explain(images, method="ablation-cam")
    full = explainer.explain(images, method="ablation-cam", mode="full")
    np.testing.assert_allclose(tail.weights, full.weights, atol=1e-5)


def test_every_channel_constant():
    model = linear_onnx(rng.standard_normal((3 * 4 * 4, 2)), (3, 4, 4))
    x = np.ones((2, 3, 4, 4), np.float32)
    for method, options in (("score-cam", {}), ("score-cam", {"profile": "pgc"}), ("is-cam", {})):
        result = Explainer(model, layer="x", progress=False).explain(x, method=method, **options)
        assert np.all(result.maps == 0) and result.metadata["constant_maps"] == [True, True]


def test_full_ablation_only_to_zero(resnet_onnx, images):
    with pytest.raises(ValueError, match="ablates to 0"):
        Explainer(resnet_onnx, progress=False).explain(
            images, method="ablation-cam", mode="full", value=-1
        )
