"""Backward graphs built from ONNX graphs: gradients equal torch autograd on exported models."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from toy_models import (
    OpZoo,
    TinyFCN1d,
    TinyMobileNet,
    randomise_batchnorm,
    tiny_resnet,
    tiny_vgg,
    torch_gradients,
)

from onnxcam.engine import graph
from onnxcam.engine.backward import GRADIENT, BackwardError, build, grad_name, seed_name
from onnxcam.engine.ort import onnxruntime as ort
from onnxcam.exporters import from_torch


def backward_session(model: onnx.ModelProto, tensors: list[str]):
    logits = graph.logits_tensor(model)
    source = graph.model_input(model).name
    built = build(model, GRADIENT, [logits], [*tensors, source], [logits])
    session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
    return session, source, logits


def ort_gradients(session, source, logits, tensors, x, classes, n_classes):
    seed = np.zeros((len(x), n_classes), np.float32)
    seed[np.arange(len(x)), classes] = 1
    names = [grad_name(t) for t in [*tensors, source]]
    return session.run(names, {source: x, seed_name(logits): seed})


def relative_error(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def fcn1d() -> torch.nn.Module:
    torch.manual_seed(0)
    model = TinyFCN1d().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model


def mobilenet() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomise_batchnorm(TinyMobileNet())


def opzoo() -> torch.nn.Module:
    torch.manual_seed(0)
    return OpZoo().eval()


CASES = {  # name: (model, input shape, module paths, exporter)
    "resnet": (tiny_resnet, (3, 32, 32), ["layer2", "layer3"], "dynamo"),
    "resnet-legacy": (tiny_resnet, (3, 32, 32), ["layer2"], "legacy"),
    "vgg": (tiny_vgg, (3, 64, 64), ["features.29"], "dynamo"),
    "mobilenet": (mobilenet, (3, 32, 32), ["block", "down"], "dynamo"),
    "fcn-1d": (fcn1d, (2, 50), ["features.2", "features"], "dynamo"),
    "op-zoo": (opzoo, (3, 16, 16), ["conv"], "dynamo"),
    "op-zoo-legacy": (opzoo, (3, 16, 16), ["conv"], "legacy"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_equal_torch_autograd(case, tmp_path):
    factory, shape, paths, exporter = CASES[case]
    model = factory()
    path = tmp_path / f"{case}.onnx"
    from_torch(model, torch.randn(2, *shape), path, layers=paths, dynamo=exporter == "dynamo")
    onnx_model = graph.load(path)
    tensors = [graph.resolve_layer(onnx_model, p) for p in paths]
    session, source, logits = backward_session(onnx_model, tensors)
    for n in (1, 5):  # one graph, any batch
        x = np.random.default_rng(n).standard_normal((n, *shape)).astype(np.float32)
        classes = np.arange(n) % 3
        n_classes = model(torch.tensor(x[:1])).shape[1]
        got = ort_gradients(session, source, logits, tensors, x, classes, n_classes)
        layer_grads, input_grad = torch_gradients(model, x, paths, classes)
        for name, a, b in zip([*paths, "input"], got, [*layer_grads, input_grad], strict=True):
            assert a.shape == b.shape
            assert relative_error(a, b) <= 1e-5, (case, n, name, relative_error(a, b))


@pytest.mark.slow
def test_efficientnet_lite0_gradients_equal_torch_float64(lite0_model, lite0_onnx):
    """Real weights, real photos. The reference is torch autograd in float64: a few ReLU6
    inputs per photo lie within 1e-5 of a kink, where two float32 gradients may pick
    different sides (bench/kinks.py counts them)."""
    from PIL import Image
    from skimage import data

    from onnxcam.io import fit_image

    model = copy.deepcopy(lite0_model)  # made float64 below
    paths = ["_swish", "_blocks.10"]
    onnx_model = graph.load(lite0_onnx)
    tensors = [graph.resolve_layer(onnx_model, p) for p in ("auto", "_blocks.10")]
    session, source, logits = backward_session(onnx_model, tensors)
    photos = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket(), data.cat()]
    x = np.stack(
        [np.asarray(fit_image(Image.fromarray(p), (224, 224), 0.875)) for p in photos]
    ).transpose(0, 3, 1, 2)
    x = ((x / 255.0 - 0.5) / 0.5).astype(np.float32)
    reference = model.double()
    for n in (1, 5):
        classes = reference(torch.tensor(x[:n], dtype=torch.float64)).argmax(1).numpy()
        got = ort_gradients(session, source, logits, tensors, x[:n], classes, 1000)
        expected, input_grad = torch_gradients(reference, x[:n].astype(np.float64), paths, classes)
        for a, b in zip(got[:2], expected, strict=True):
            assert relative_error(a, b) <= 1e-5
        # through all 16 blocks to the pixels: a norm-wise check (isolated kink flips)
        assert np.linalg.norm(got[2] - input_grad) / np.linalg.norm(input_grad) <= 2e-2


def _tiny(nodes, inputs, inits, output="y"):
    g = helper.make_graph(
        nodes, "t", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], inits
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_an_op_without_a_rule_is_named_with_its_node():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    model = _tiny([helper.make_node("Sin", ["x"], ["y"], name="wave")], [x], [])
    with pytest.raises(BackwardError, match=r"no gradient rule for op Sin \(node 'wave'\)"):
        build(model, GRADIENT, ["y"], ["x"])


def test_unsupported_attributes_are_refused_clearly():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8])
    pads = numpy_helper.from_array(np.array([0, 0, 2, 0, 0, 2], np.int64), "p")
    model = _tiny(
        [helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect", name="pad")], [x], [pads]
    )
    with pytest.raises(BackwardError, match=r"Pad node 'pad': mode 'reflect' is not supported"):
        build(model, GRADIENT, ["y"], ["x"])


def test_a_tensor_that_does_not_reach_the_seed_is_an_error():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    c = numpy_helper.from_array(np.ones(4, np.float32), "c")
    model = _tiny([helper.make_node("Relu", ["c"], ["y"])], [x], [c])
    with pytest.raises(BackwardError, match="does not depend on"):
        build(model, GRADIENT, ["y"], ["x"])


def test_only_the_part_after_the_layer_is_differentiated(resnet_onnx):
    """The head before the layer gets no backward nodes (a Sin there would not matter)."""
    model = graph.load(resnet_onnx)
    layer = graph.resolve_layer(model, "layer3")
    built = build(model, GRADIENT, [graph.logits_tensor(model)], [layer])
    new = [n for n in built.graph.node[len(model.graph.node) :] if n.op_type == "ConvTranspose"]
    assert new == []  # layer3 -> GAP -> Gemm: no convolution after the layer
    assert len(built.graph.node) - len(model.graph.node) < 15
