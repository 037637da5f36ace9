"""The OpenVINO execution provider (`onnxcam[openvino]`, ONNX Runtime's OpenVINO build, which
`make test` installs in a second environment): every method's maps equal the CPU provider's;
weights shared by a Conv and a ConvTranspose are given their own copy there."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcam import Explainer, methods
from onnxcam.engine.graph import unshare_weights
from onnxcam.engine.methods import method_class
from onnxcam.engine.methods.parts.attention import AttentionMethod
from onnxcam.engine.ort import onnxruntime as ort
from onnxcam.engine.runner import open_session

HAS_OPENVINO = "OpenVINOExecutionProvider" in ort.get_available_providers()
needs_openvino = pytest.mark.skipif(
    not HAS_OPENVINO, reason="needs onnxruntime-openvino (make test runs it in .venv-openvino)"
)
SHORT = {"rise": {"n_masks": 64}, "ss-cam": {"n_samples": 2}, "is-cam": {"n_steps": 2}}
CNN_METHODS = [m for m in methods() if not issubclass(method_class(m), AttentionMethod)]


def shared_weights_model() -> onnx.ModelProto:
    """y = ConvTranspose(g, W) beside z = Conv(x, W), both reading one initializer W."""
    weights = np.random.default_rng(0).standard_normal((6, 6, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("ConvTranspose", ["g", "W"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "W"], ["z"], pads=[1, 1, 1, 1]),
    ]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 6, 5, 5]) for n in "gx"]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "yz"]
    g = helper.make_graph(nodes, "shared", inputs, outputs, [numpy_helper.from_array(weights, "W")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_a_convtranspose_gets_its_own_copy_of_shared_weights():
    model = shared_weights_model()
    unshared = unshare_weights(model, "ConvTranspose")
    transpose, conv = unshared.graph.node
    assert conv.input[1] == "W" and transpose.input[1] != "W"
    values = {t.name: numpy_helper.to_array(t) for t in unshared.graph.initializer}
    np.testing.assert_array_equal(values[transpose.input[1]], values["W"])
    assert unshare_weights(unshared, "ConvTranspose") is unshared  # nothing shared any more


@needs_openvino
def test_shared_weights_give_the_cpu_providers_values():
    model = shared_weights_model()
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal((2, 6, 5, 5)).astype(np.float32) for n in "gx"}
    want = open_session(model, "cpu").run(None, feeds)
    got = open_session(model, "openvino").run(None, feeds)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4 * np.abs(b).max())


@needs_openvino
@pytest.mark.parametrize("method", CNN_METHODS)
def test_every_method_equals_the_cpu_provider(resnet_onnx, images, method):
    cpu = Explainer(resnet_onnx, layer="layer2", progress=False)
    openvino = Explainer(resnet_onnx, layer="layer2", provider="openvino", progress=False)
    assert openvino.provider == "OpenVINOExecutionProvider"
    options = SHORT.get(method, {})
    want = cpu.explain(images, method, **options)
    got = openvino.explain(images, method, **options)
    np.testing.assert_array_equal(got.targets, want.targets)
    np.testing.assert_allclose(got.maps, want.maps, atol=1e-4)
