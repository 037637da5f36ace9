"""The gradient family against algorithms §4's golden values, CAM, and direct references."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from toy_models import hook_outputs, linear_onnx, torch_gradients

from onnxcam import Explainer
from onnxcam.engine.backward import grad_name
from onnxcam.engine.methods.layer_cam import fuse_layer_maps
from onnxcam.exporters import from_torch

# Spec §4: toy layer (3 channels, 2x2) and the gradient of the explained class.
A = np.array([[[1, 0], [0, 1]], [[1, 2], [2, 0]], [[1, 1], [1, 1]]], np.float32)
G = np.array(
    [[[0.5, -0.5], [0.25, 0.25]], [[-1, 0.5], [0.5, -1]], [[0.1, 0.1], [0.1, 0.1]]], np.float32
)


@pytest.fixture(scope="module")
def golden() -> Explainer:
    """y_0 = sum(G * A), y_1 = -sum(|G| * A): the target layer is the input, dy_0/dA = G."""
    v = np.stack([G.ravel(), -np.abs(G).ravel()], axis=1)
    return Explainer(linear_onnx(v, (3, 2, 2)), layer="x", progress=False)


def run(explainer, method, **options):
    return explainer.explain(A[None], method=method, target=0, **options)


GOLDEN_WEIGHTS = {
    ("grad-cam", ()): [0.125, -0.25, 0.1],
    ("grad-cam++", ()): [0.366665, 0.222222, 0.16666],
    ("grad-cam++", (("profile", "official"),)): [0.171875, -1.0, 0.1],
    ("grad-cam++", (("profile", "torchcam"),)): [0.15625, 0.25, 0.004],
    ("xgrad-cam", ()): [0.375, 0.2, 0.1],
    ("abs-cam", (("phase2", "none"),)): [0.375, 0.75, 0.1],
}


@pytest.mark.parametrize(("method", "options"), list(GOLDEN_WEIGHTS))
def test_channel_weights_equal_the_golden_values(golden, method, options):
    result = run(golden, method, **dict(options))
    np.testing.assert_allclose(result.weights[0], GOLDEN_WEIGHTS[method, options], atol=2e-5)


GOLDEN_RAW = {
    "grad-cam": [[-0.025, -0.4], [-0.4, 0.225]],
    "abs-cam": [[1.225, 1.6], [1.6, 0.475]],
    "xgrad-cam": [[0.675, 0.5], [0.5, 0.475]],
    "layer-cam": [[0.6, 1.1], [1.1, 0.35]],
    "hires-cam": [[-0.4, 1.1], [1.1, 0.35]],
}


@pytest.mark.parametrize("method", list(GOLDEN_RAW))
def test_raw_maps_equal_the_golden_values_after_relu(golden, method):
    options = {"phase2": "none"} if method == "abs-cam" else {}
    result = run(golden, method, **options)
    np.testing.assert_allclose(result.raw[0], np.maximum(GOLDEN_RAW[method], 0), atol=2e-6)


def test_hires_cam_keeps_the_sign_without_relu(golden):
    result = run(golden, "hires-cam", relu=False)
    np.testing.assert_allclose(result.raw[0], GOLDEN_RAW["hires-cam"], atol=2e-6)


def test_all_weights_negative_give_a_zero_map(golden):
    result = golden.explain(A[None], method="grad-cam", target=1)  # every weight < 0, A >= 0
    assert result.raw.max() == 0 and result.maps.max() == 0
    assert result.metadata["constant_maps"] == [True]


class GapLinear(torch.nn.Module):
    """conv-ReLU features, GAP + Linear: Grad-CAM = CAM (Zhou et al. 2016) exactly."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


@pytest.fixture(scope="module")
def gap_linear(tmp_path_factory):
    model = GapLinear().eval()
    path = tmp_path_factory.mktemp("gap") / "gap.onnx"
    from_torch(model, torch.randn(2, 3, 12, 12), path, layers=["features"])
    return model, Explainer(path, layer="features", progress=False)


def test_grad_cam_equals_cam_on_a_gap_linear_head(gap_linear):
    model, explainer = gap_linear
    x = np.random.default_rng(1).standard_normal((3, 3, 12, 12)).astype(np.float32)
    result = explainer.explain(x, method="grad-cam")
    w = model.fc.weight.detach().numpy()[result.targets] / (12 * 12)  # dy_c/dA = W_c / (u v)
    np.testing.assert_allclose(result.weights, w, rtol=1e-5, atol=1e-9)
    _, acts = explainer.forward(x)
    cam = np.maximum(
        np.einsum("nk,nkhw->nhw", model.fc.weight.detach().numpy()[result.targets], acts), 0
    )
    scale = cam.reshape(3, -1).max(1) / result.raw.reshape(3, -1).max(1)
    np.testing.assert_allclose(result.raw * scale[:, None, None], cam, rtol=1e-5, atol=1e-6)
    hires = explainer.explain(x, method="hires-cam")
    np.testing.assert_allclose(hires.raw * 144, cam, rtol=1e-4, atol=1e-5)  # HiResCAM = CAM / uv


def test_gradient_methods_use_torch_gradients(resnet_model, resnet_onnx, images):
    """Grad-CAM weights, LayerCAM and XGrad-CAM maps from torch autograd at the same layer."""
    explainer = Explainer(resnet_onnx, layer="layer2", progress=False)
    result = explainer.explain(images, method="grad-cam")
    (grads,), _ = torch_gradients(resnet_model, images, ["layer2"], result.targets)
    np.testing.assert_allclose(result.weights, grads.mean((2, 3)), rtol=1e-5, atol=1e-8)
    _, acts = explainer.forward(images)
    layer = explainer.explain(images, method="layer-cam")
    expected = np.maximum((np.maximum(grads, 0) * acts).sum(1), 0)
    np.testing.assert_allclose(layer.raw, expected, rtol=1e-4, atol=1e-7)
    xgrad = explainer.explain(images, method="xgrad-cam")
    expected = (grads * acts).sum((2, 3)) / (acts.sum((2, 3)) + 1e-7)
    np.testing.assert_allclose(xgrad.weights, expected, rtol=1e-4, atol=1e-8)


def test_gradients_from_the_tail_equal_the_full_graph(resnet_onnx, images):
    explainer = Explainer(resnet_onnx, layer="layer2", progress=False)
    views = explainer.views
    assert views._tail_backward is not None  # layer2's tail reads nothing else from the head
    logits, acts = explainer.forward(images)
    seed = np.eye(logits.shape[1], dtype=np.float32)[logits.argmax(1)]
    tail = views.layer_gradients(images, acts, seed, 2)
    runner = views.backward((views.logits,), (views.layer,))
    feeds = runner.seed_feeds({views.logits: seed})
    (full,) = runner.run(images, [grad_name(views.layer)], 2, feeds)
    np.testing.assert_allclose(tail, full, rtol=1e-5, atol=1e-7)


def test_layer_cam_fuses_layers_by_tanh_and_max(resnet_model, resnet_onnx, images):
    explainer = Explainer(resnet_onnx, layer="layer3", progress=False)
    result = explainer.explain(images, method="layer-cam", layers=["layer2", "layer3"])
    grads, _ = torch_gradients(resnet_model, images, ["layer2", "layer3"], result.targets)
    seen = hook_outputs(resnet_model, torch.tensor(images), ["layer2", "layer3"])
    acts = [seen["layer2"].numpy(), seen["layer3"].numpy()]
    per_layer = [
        np.maximum((np.maximum(g, 0) * a).sum(1), 0) for g, a in zip(grads, acts, strict=True)
    ]
    np.testing.assert_allclose(result.raw, fuse_layer_maps(per_layer), rtol=1e-4, atol=1e-6)
    assert result.raw.shape == (3, 8, 8)  # layer2's 8x8 is the larger
    assert result.raw.max() <= np.tanh(2.0) + 1e-6 and result.metadata["gamma"] == 2.0


def _torch_blur(x: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """kornia-style gaussian_blur2d: separable taps, reflect border, by torch conv2d."""
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    taps = taps / taps.sum()
    t = torch.tensor(x, dtype=torch.float64)
    c = t.shape[1]
    padded = torch.nn.functional.pad(t, [size // 2] * 4, mode="reflect")
    rows = torch.nn.functional.conv2d(padded, taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return torch.nn.functional.conv2d(
        rows, taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c
    ).numpy()


def test_gaussian_blur_equals_a_reflect_padded_convolution(images):
    from onnxcam.engine.blur import gaussian_blur

    np.testing.assert_allclose(
        gaussian_blur(images, 9, 3.0), _torch_blur(images, 9, 3.0), atol=1e-6
    )
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(images, 8, 3.0)


def _normalised_upsampled(maps: torch.Tensor, size) -> torch.Tensor:
    up = torch.nn.functional.interpolate(maps[:, None], size=size, mode="bilinear")[:, 0]
    lo = up.flatten(1).min(1)[0][:, None, None]
    hi = up.flatten(1).max(1)[0][:, None, None]
    return (up - lo) / (hi - lo + 1e-8)


def test_group_cam_equals_a_torch_reference(resnet_model, resnet_onnx, images):
    explainer = Explainer(resnet_onnx, layer="layer2", progress=False)
    result = explainer.explain(
        images[:2], method="group-cam", groups=4, blur_size=11, blur_sigma=5.0
    )
    x = images[:2]
    (grads,), _ = torch_gradients(resnet_model, x, ["layer2"], result.targets)
    acts = hook_outputs(resnet_model, torch.tensor(x), ["layer2"])["layer2"].numpy()
    weighted = grads.mean((2, 3), keepdims=True) * acts  # (2, 16, 8, 8): 4 groups of 4
    maps = np.maximum(weighted.reshape(2, 4, 4, 8, 8).sum(2), 0)
    blurred = torch.tensor(_torch_blur(x, 11, 5.0), dtype=torch.float32)
    with torch.no_grad():
        for n in range(2):
            masks = _normalised_upsampled(torch.tensor(maps[n]), (32, 32))[:, None]
            xt = torch.tensor(x[n])
            blended = xt * masks + blurred[n] * (1 - masks)
            probs = torch.softmax(resnet_model(blended), 1)[:, result.targets[n]]
            base = torch.softmax(resnet_model(blurred[n : n + 1]), 1)[0, result.targets[n]]
            expected = np.maximum((probs - base).numpy(), 0)
            np.testing.assert_allclose(result.weights[n], expected, atol=2e-6)
    raw = np.maximum(np.einsum("ng,nghw->nhw", result.weights, maps), 0)
    np.testing.assert_allclose(result.raw, raw, rtol=1e-4, atol=1e-7)
    assert result.metadata["groups"] == 4 and result.metadata["passes_run"] <= 2 * 4 + 2


def test_abs_cam_phase2_scores_masked_inputs(resnet_model, resnet_onnx, images):
    explainer = Explainer(resnet_onnx, layer="layer3", progress=False)
    x = images[:1]
    result = explainer.explain(x, method="abs-cam")
    (grads,), _ = torch_gradients(resnet_model, x, ["layer3"], result.targets)
    acts = hook_outputs(resnet_model, torch.tensor(x), ["layer3"])["layer3"][0]
    w = np.abs(grads[0]).mean((1, 2))
    usable = (w > 0) & (acts.flatten(1).max(1)[0] > acts.flatten(1).min(1)[0]).numpy()
    masks = _normalised_upsampled(acts[usable], (32, 32))[:, None]
    with torch.no_grad():
        probs = torch.softmax(resnet_model(torch.tensor(x[0]) * masks), 1)[:, result.targets[0]]
    expected = np.zeros_like(w)
    expected[usable] = probs.numpy() * w[usable]
    np.testing.assert_allclose(result.weights[0], expected, rtol=1e-4, atol=1e-9)
    assert result.metadata["reading"].endswith("unverified")
    norm = explainer.explain(x, method="abs-cam", phase2="score_channels_norm")
    upsampled = _normalised_upsampled(acts[usable], (32, 32)).numpy()
    combined = np.tensordot(probs.numpy(), upsampled, axes=1)
    span = combined.max() - combined.min()
    np.testing.assert_allclose(norm.maps[0], (combined - combined.min()) / (span + 1e-8), atol=1e-4)
    with pytest.raises(ValueError, match="phase2"):
        explainer.explain(x, method="abs-cam", phase2="paper")


@pytest.mark.parametrize("absolute", [True, False])
def test_salience_cam_equals_its_documented_reading(resnet_model, resnet_onnx, images, absolute):
    explainer = Explainer(resnet_onnx, layer="layer3", progress=False)
    x = images[:2]
    result = explainer.explain(x, method="salience-cam", absolute=absolute)
    (grads,), _ = torch_gradients(resnet_model, x, ["layer3"], result.targets)
    alpha = grads.mean((2, 3))
    np.testing.assert_allclose(result.weights, alpha, rtol=1e-5, atol=1e-9)
    xt = torch.tensor(x, requires_grad=True)
    seen = {}
    handle = resnet_model.layer3.register_forward_hook(lambda m, i, o: seen.setdefault("a", o))
    resnet_model(xt)
    handle.remove()
    channel_sums = seen["a"].sum((2, 3))  # (N, K)
    salience = np.zeros((2, 32, 32))
    if absolute:
        for k in range(channel_sums.shape[1]):
            (dx,) = torch.autograd.grad(channel_sums[:, k].sum(), xt, retain_graph=True)
            salience += alpha[:, k, None, None] * dx.abs().sum(1).numpy()
    else:
        total = (torch.tensor(alpha) * channel_sums).sum()
        (dx,) = torch.autograd.grad(total, xt)
        salience = dx.sum(1).numpy()
    np.testing.assert_allclose(result.raw, np.maximum(salience, 0), rtol=1e-4, atol=1e-7)
    assert "not verified" in result.metadata["reading"]
    if absolute:  # a channel whose ReLU is shut at every position has S^k = 0: no pass
        alive = (seen["a"] > 0).flatten(2).any(2).numpy() & (alpha != 0)
        assert 0 < alive.sum() < alive.size
        assert result.metadata["passes_per_input"] == (1 + alive.sum(1)).tolist()
        source = explainer.input.name
        layer_shape = tuple(result.metadata["layer_shape"])  # MaxPool: no shared forward
        assert not explainer.views.shares_forward(("layer3",), (source,), x, layer_shape)


class SmallCNN(torch.nn.Module):
    """Conv -> `pool` (a strided conv, or MaxPool) -> BN -> ReLU6 -> depthwise conv + residual
    -> ReLU ("act", two channels dead everywhere) -> GAP -> fc. MaxPool's gradient scatters
    to positions in the forward's own batch, so one forward pass cannot serve many seeds."""

    def __init__(self, maxpool: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1, stride=1 if maxpool else 2)
        self.pool = torch.nn.MaxPool2d(2) if maxpool else torch.nn.Identity()
        self.bn = torch.nn.BatchNorm2d(6).eval()
        self.depthwise = torch.nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.act = torch.nn.ReLU()
        self.fc = torch.nn.Linear(6, 4)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)
            self.depthwise.bias[:2] = -50.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.nn.functional.relu6(self.bn(self.pool(self.conv(x))))
        return self.act(self.depthwise(z) + z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


@pytest.mark.parametrize("maxpool", [False, True])
def test_salience_cam_with_and_without_one_forward_pass_per_input(tmp_path, maxpool):
    model = SmallCNN(maxpool).eval()
    path = tmp_path / "small.onnx"
    from_torch(model, torch.randn(2, 3, 8, 8), path, layers=["act"])
    explainer = Explainer(path, layer="act", progress=False)
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    result = explainer.explain(x, method="salience-cam")
    layer_shape = tuple(result.metadata["layer_shape"])
    shared = explainer.views.shares_forward(
        (explainer.views.layer,), (explainer.input.name,), x, layer_shape
    )
    assert shared is not maxpool
    xt = torch.tensor(x, requires_grad=True)
    acts = model.features(xt)
    score = model.fc(acts.mean((2, 3)))[np.arange(3), result.targets].sum()
    (grads,) = torch.autograd.grad(score, acts, retain_graph=True)
    alpha = grads.mean((2, 3)).numpy()
    np.testing.assert_allclose(result.weights, alpha, rtol=1e-5, atol=1e-9)
    salience = np.zeros((3, 8, 8))
    for k in range(6):
        (dx,) = torch.autograd.grad(acts[:, k].sum(), xt, retain_graph=True)
        salience += alpha[:, k, None, None] * dx.abs().sum(1).numpy()
    np.testing.assert_allclose(result.raw, np.maximum(salience, 0), rtol=1e-4, atol=1e-7)
    alive = (acts > 0).flatten(2).any(2).numpy()
    assert not alive[:, :2].any() and alive[:, 2:].all()
    assert result.metadata["passes_per_input"] == [1 + 4] * 3


def _activation_model(op: str, bounds: dict, opset: int = 17) -> onnx.ModelProto:
    """x -> `op` (Relu or Clip with `bounds`: name -> value, or "input" for a graph input)."""
    inputs, inits, attrs = ["x"], [], {}
    for name in ("min", "max"):
        value = bounds.get(name)
        if opset < 11 and value is not None:
            attrs[name] = value
        elif value == "input":
            inputs.append(name)
        elif value is not None:
            inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
            inputs.append(name)
        elif op == "Clip" and opset >= 11:
            inputs.append("")
    while inputs and inputs[-1] == "":
        inputs.pop()
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 2])]
    if bounds.get("min") == "input" or bounds.get("max") == "input":
        graph_inputs.append(helper.make_tensor_value_info("max", TensorProto.FLOAT, []))
    g = helper.make_graph(
        [helper.make_node(op, inputs, ["y"], **attrs)],
        "act",
        graph_inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 2])],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(
    ("op", "bounds", "opset", "passing"),
    [
        ("Relu", {}, 17, [[0, 1], [1, 1]]),
        ("Clip", {"min": 0.0, "max": 6.0}, 17, [[0, 1], [1, 0]]),
        ("Clip", {"min": 0.0}, 17, [[0, 1], [1, 1]]),  # only a lower bound
        ("Clip", {"max": 6.0}, 17, [[1, 1], [1, 0]]),  # min left out ("")
        ("Clip", {"min": 0.0, "max": 6.0}, 10, [[0, 1], [1, 0]]),  # bounds as attributes
        ("Clip", {"max": "input"}, 17, None),  # a bound computed at run time: unknown
        ("Sigmoid", {}, 17, None),
    ],
)
def test_where_the_layers_activation_passes_a_gradient(op, bounds, opset, passing):
    """Read off the activation's output, where its gradient rule's condition holds: torch's
    (relu6 passes nothing at 0 and 6)."""
    from onnxcam.engine import graph
    from onnxcam.engine.backward.gradients.activations import passes_gradient

    y = np.array([[[0.0, 2.0], [5.0, 6.0]]], np.float32)
    found = passes_gradient(graph.ModelInfo(_activation_model(op, bounds, opset)), "y", y)
    if passing is None:
        assert found is None
        return
    np.testing.assert_array_equal(found[0], np.array(passing, bool))
    if op == "Clip" and bounds.get("min") == 0.0 and bounds.get("max") == 6.0:
        z = torch.tensor(y, requires_grad=True)
        torch.nn.functional.relu6(z).sum().backward()
        np.testing.assert_array_equal(found, z.grad.numpy() != 0)


def test_an_input_with_no_gradient_does_not_decide_the_shared_forward_pass(tmp_path):
    model = SmallCNN(maxpool=False).eval()
    with torch.no_grad():
        model.conv.bias.fill_(-1.0)  # every ReLU6 shut for a zero input: no gradient at all
    path = tmp_path / "shut.onnx"
    from_torch(model, torch.randn(2, 3, 8, 8), path, layers=["act"])
    explainer = Explainer(path, layer="act", progress=False)
    key = ((explainer.views.layer,), (explainer.input.name,))
    zeros = np.zeros((1, 3, 8, 8), np.float32)
    assert not explainer.views.shares_forward(*key, zeros, (6, 4, 4))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32) * 4
    assert explainer.views.shares_forward(*key, x, (6, 4, 4))
