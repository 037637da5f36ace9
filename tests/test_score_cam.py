"""Score-CAM against independent references: torch masked forwards, pytorch-grad-cam's formula,
the authors' code, the golden weights of algorithms §4 and a model whose target layer is its
input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import references
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from toy_models import hook_outputs

from onnxcam import Explainer
from onnxcam.engine.methods.parts.channels import channel_softmax


def minmax(t: torch.Tensor, eps: float) -> torch.Tensor:
    flat = t.flatten(-2)
    lo = flat.min(-1).values[..., None, None]
    hi = flat.max(-1).values[..., None, None]
    return (t - lo) / (hi - lo + eps)


def reference_pgc(model, x: torch.Tensor, layer: str) -> np.ndarray:
    """pytorch-grad-cam's ScoreCAM: UpsamplingBilinear2d masks, every channel forwarded, softmax,
    ReLU, scale_cam_image (min-max 1e-7, then resize; cv2.resize = align_corners=False)."""
    with torch.no_grad():
        acts = hook_outputs(model, x, [layer])[layer]
        classes = model(x).argmax(1)
        upsampled = torch.nn.UpsamplingBilinear2d(size=x.shape[-2:])(acts)
        maxs = upsampled.flatten(2).max(-1).values[:, :, None, None]
        mins = upsampled.flatten(2).min(-1).values[:, :, None, None]
        upsampled = (upsampled - mins) / (maxs - mins + 1e-8)
        inputs = x[:, None] * upsampled[:, :, None]
        scores = torch.stack([model(inp)[:, c] for inp, c in zip(inputs, classes, strict=True)])
        weights = torch.softmax(scores, dim=-1)
        cam = torch.relu((weights[:, :, None, None] * acts).sum(1))
        out = []
        for img in cam:
            img = img - img.min()
            img = img / (1e-7 + img.max())
            img = F.interpolate(
                img[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False
            )[0, 0]
            img = img - img.min()
            out.append((img / (1e-7 + img.max())).numpy())
    return np.stack(out)


def reference_official(model, x: torch.Tensor, layer: str) -> np.ndarray:
    """The authors' cam/scorecam.py: probability of the masked input, raw upsampled maps summed."""
    out = []
    with torch.no_grad():
        for xi in x[:, None]:
            acts = hook_outputs(model, xi, [layer])[layer]
            cls = model(xi).argmax().item()
            saliency = torch.zeros(xi.shape[-2:], dtype=torch.float64)
            for k in range(acts.shape[1]):
                up = F.interpolate(
                    acts[:, k : k + 1], size=xi.shape[-2:], mode="bilinear", align_corners=False
                )
                if up.max() == up.min():
                    continue
                norm = (up - up.min()) / (up.max() - up.min())
                prob = torch.softmax(model(xi * norm), 1)[0, cls].double()
                saliency += prob * up[0, 0].double()
            saliency = torch.relu(saliency)
            out.append(((saliency - saliency.min()) / (saliency.max() - saliency.min())).numpy())
    return np.stack(out)


@pytest.fixture(scope="module")
def resnet_explainer(resnet_onnx):
    return Explainer(resnet_onnx, layer="layer2", batch_size=16, progress=False)


def test_paper_profile_equals_independent_reference(resnet_model, resnet_explainer, images):
    result = resnet_explainer.explain(images)
    x = torch.from_numpy(images)
    acts = hook_outputs(resnet_model, x, ["layer2"])["layer2"]
    want_maps, want_weights, _, _ = references.score_cam(resnet_model, acts, x)
    assert np.abs(result.weights - want_weights).max() <= 1e-4
    assert np.abs(result.maps - want_maps).max() <= 1e-4
    assert result.maps.shape == (3, 32, 32) and result.raw.shape == (3, 8, 8)
    assert result.maps.min() >= 0 and result.maps.max() <= 1
    assert result.metadata["passes_run"] + result.metadata["passes_skipped"] == 3 * 16


def test_pgc_profile_equals_pytorch_grad_cam_formula(resnet_model, resnet_explainer, images):
    result = resnet_explainer.explain(images, profile="pgc")
    want = reference_pgc(resnet_model, torch.from_numpy(images), "layer2")
    assert np.abs(result.maps - want).max() <= 1e-4
    paper = resnet_explainer.explain(images)
    assert np.abs(result.weights - paper.weights).max() > 1e-3  # the profiles really differ
    assert np.abs(result.maps - paper.maps).max() > 1e-4


def test_official_profile_equals_authors_code(resnet_model, resnet_explainer, images):
    result = resnet_explainer.explain(images[:2], profile="official")
    want = reference_official(resnet_model, torch.from_numpy(images[:2]), "layer2")
    assert np.abs(result.maps - want).max() <= 1e-4


def test_golden_weights_of_the_spec():
    want = [0.253716, 0.689672, 0.056612]
    np.testing.assert_allclose(channel_softmax(np.array([[2.0, 3.0, 0.5]]))[0], want, atol=1e-6)
    shifted = channel_softmax(np.array([[2.0, 3.0, 0.5]]) - 7.25)  # any baseline subtracted
    np.testing.assert_allclose(shifted[0], want, atol=1e-6)
    skipped = channel_softmax(np.array([[2.0, 3.0, 0.5]]), np.array([[True, True, False]]))
    np.testing.assert_allclose(
        skipped[0], [np.exp(2) / (np.exp(2) + np.exp(3)), np.exp(3) / (np.exp(2) + np.exp(3)), 0]
    )


def test_batch_equals_single_calls(resnet_explainer, images):
    together = resnet_explainer.explain(images, target=[1, 4, 9])
    for i in range(3):
        alone = resnet_explainer.explain(images[i : i + 1], target=[1, 4, 9][i])
        np.testing.assert_allclose(together.maps[i], alone.maps[0], atol=1e-6)
        np.testing.assert_allclose(together.weights[i], alone.weights[0], atol=1e-7)
    assert together.targets.tolist() == [1, 4, 9]


def test_batch_size_does_not_change_the_result(resnet_onnx, resnet_explainer, images):
    small = Explainer(resnet_onnx, layer="layer2", batch_size=5, progress=False).explain(images)
    np.testing.assert_allclose(small.maps, resnet_explainer.explain(images).maps, atol=1e-6)


def linear_model(V: np.ndarray, shape: tuple[int, ...]) -> onnx.ModelProto:
    """y = V · flatten(X): its target layer is the input itself (algorithms §4, toy model iii)."""
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("MatMul", ["flat", "V"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", V.shape[1]])],
        [numpy_helper.from_array(V.astype(np.float32), "V")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("shape", [(3, 6, 5), (2, 40)])
def test_target_layer_is_the_input(shape):
    rng = np.random.default_rng(5)
    V = rng.standard_normal((int(np.prod(shape)), 4)) * 0.1
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    x[1, 1] = 0.7  # a constant input channel is skipped
    result = Explainer(linear_model(V, shape), layer="x", progress=False).explain(x)
    for n in range(2):
        c = result.targets[n]
        valid = np.array([x[n, k].max() > x[n, k].min() for k in range(shape[0])])
        masks = [
            (x[n, k] - x[n, k].min()) / (x[n, k].max() - x[n, k].min() + 1e-8)
            for k in range(shape[0])
        ]
        scores = np.array([(x[n] * m).ravel() @ V[:, c] for m in masks])
        want = channel_softmax(scores[None], valid[None])[0]
        np.testing.assert_allclose(result.weights[n], want, atol=1e-5)
    assert result.metadata["passes_run"] == 2 * shape[0] - 1
    assert result.maps.shape == (2, *shape[1:])
