"""Loading, layer listing, `auto`, exposure: on exported, hand-built and foreign ONNX files."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcam import Explainer
from onnxcam.engine import graph
from onnxcam.engine.runner import open_session
from onnxcam.errors import LayerError, ModelError


def tf_style_model() -> onnx.ModelProto:
    """Opset 11, TF-style names, -1 and symbolic dims, ReduceMean head ending in Softmax."""
    rng = np.random.default_rng(0)

    def init(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["input_1:0", "w1"], ["model/conv/Conv2D:0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["model/conv/Conv2D:0"], ["model/conv/Relu:0"]),
        helper.make_node(
            "MaxPool",
            ["model/conv/Relu:0"],
            ["model/pool/MaxPool:0"],
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        helper.make_node(
            "Conv", ["model/pool/MaxPool:0", "w2"], ["model/conv_1/Conv2D:0"], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["model/conv_1/Conv2D:0"], ["model/conv_1/Relu:0"]),
        helper.make_node(
            "ReduceMean", ["model/conv_1/Relu:0"], ["model/gap/Mean:0"], axes=[2, 3], keepdims=0
        ),
        helper.make_node("MatMul", ["model/gap/Mean:0", "dense_w"], ["model/dense/MatMul:0"]),
        helper.make_node("Add", ["model/dense/MatMul:0", "dense_b"], ["model/dense/BiasAdd:0"]),
        helper.make_node("Softmax", ["model/dense/BiasAdd:0"], ["Identity:0"], axis=1),
    ]
    inp = helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, [-1, 3, "height", "width"])
    out = helper.make_tensor_value_info("Identity:0", TensorProto.FLOAT, [-1, 5])
    inits = [
        init("w1", 4, 3, 3, 3),
        init("w2", 6, 4, 3, 3),
        init("dense_w", 6, 5),
        init("dense_b", 5),
    ]
    g = helper.make_graph(nodes, "tf_model", [inp], [out], inits)
    return helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 11)], producer_name="tf2onnx", ir_version=7
    )


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        graph.load(tmp_path / "nope.onnx")


def test_truncated_file(tmp_path, resnet_onnx):
    data = resnet_onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"truncated|invalid"):
        graph.load(cut)


def test_not_onnx(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xff definitely not protobuf" * 10)
    with pytest.raises(ModelError):
        Explainer(junk)


def test_exported_layers_auto_and_shapes(resnet_onnx):
    model = graph.load(resnet_onnx)
    layers = graph.list_layers(model)
    assert layers[0].auto and layers[0].name == "layer3"
    assert sum(info.auto for info in layers) == 1
    assert layers[0].shape == ("batch", 24, 4, 4)
    assert layers[0].shape_text() == "(batch, 24, 4, 4)"
    assert all(not all(d == 1 for d in info.shape[2:]) for info in layers)
    assert "layer2" in {info.name for info in layers}
    scopes = {info.name: info.scope for info in layers}
    assert scopes["layer3"].startswith("layer3")  # the wrapper's own scope is dropped


def test_tf_style_names_and_unknown_dims():
    model = tf_style_model()
    assert graph.logits_tensor(model) == "model/dense/BiasAdd:0"  # the Softmax is looked through
    layers = graph.list_layers(model)
    assert [info.name for info in layers[:2]] == ["model/conv_1/Relu:0", "model/conv_1/Conv2D:0"]
    assert layers[0].auto and layers[0].shape[1] == 6
    assert graph.resolve_layer(model, "auto") == "model/conv_1/Relu:0"
    ex = Explainer(model, progress=False)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 16)).astype(np.float32)
    logits, acts = ex.forward(x)
    assert logits.shape == (2, 5) and acts.shape == (2, 6, 6, 8)
    probs = open_session(model).run(None, {"input_1:0": x})[0]
    np.testing.assert_allclose(
        np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs, atol=1e-5
    )


def test_unknown_layer_lists_candidates(resnet_onnx):
    with pytest.raises(LayerError) as info:
        Explainer(resnet_onnx, layer="layer9")
    assert "layer3" in str(info.value) and "layer2" in str(info.value)


def test_layer_without_spatial_axes(resnet_onnx):
    model = graph.load(resnet_onnx)
    pooled = next(
        n.output[0] for n in model.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")
    )
    with pytest.raises(LayerError, match="spatial"):
        Explainer(resnet_onnx, layer=pooled)
    with pytest.raises(LayerError, match="spatial"):
        Explainer(resnet_onnx, layer="logits")


def test_module_path_and_tensor_name_resolve(resnet_onnx):
    model = graph.load(resnet_onnx)
    assert graph.resolve_layer(model, "layer2") == "layer2"
    internal = next(i.name for i in graph.list_layers(model) if i.name not in ("layer2", "layer3"))
    assert graph.resolve_layer(model, internal) == internal


def test_expose_an_input_and_an_inner_tensor(resnet_onnx):
    model = graph.load(resnet_onnx)
    inner = graph.list_layers(model)[-1].name
    exposed = graph.expose(model, ["input", inner])
    names = [o.name for o in exposed.graph.output]
    assert graph.exposed_name(model, "input") in names and inner in names
    assert len(model.graph.output) == 3  # the original is untouched
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (echo,) = open_session(exposed).run([graph.exposed_name(model, "input")], {"input": x})
    np.testing.assert_array_equal(echo, x)


def test_foreign_paddle_classifier(rapidocr_cls_bytes):
    model = graph.load(rapidocr_cls_bytes)
    assert model.producer_name == "PaddlePaddle"
    layers = graph.list_layers(model)
    assert layers[0].auto and layers[0].name == "pool2d_9.tmp_0"
    assert layers[0].shape[1] == 200 and isinstance(layers[0].shape[2], str)  # symbolic
    assert graph.logits_tensor(model) == "linear_1.tmp_1"
    assert all(info.shape[1:] != (1, 1) for info in layers)
