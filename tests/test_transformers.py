"""Vision transformers and modern CNNs from the `transformers` package (random weights, exported
by torch's dynamo exporter): `auto` picks a feature map (for ViT and DeiT the tokens of the
last block's normalised input, read as a grid without their prefix), gradients equal torch
autograd, Grad-CAM equals a torch Grad-CAM with pytorch-grad-cam's reshape convention (drop the
prefix tokens, reshape the rest row-major to (h, w)), every method gives maps in [0, 1] of the
input's size, LRP conserves what transformers' rules should."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_models import SIZE, SPECS, RegisterViT, export

from onnxcam import Explainer, methods
from onnxcam.engine import backward, graph
from onnxcam.engine.graph import tokens
from onnxcam.engine.runner import open_session
from onnxcam.errors import LayerError
from onnxcam.exporters import from_torch

pytest.importorskip("transformers", reason="transformers is a test dependency (make test)")

ATTENTION_METHODS = ("attention-rollout", "gradient-rollout", "legrad")
#: Zero maps that are the method's answer: on the random register ViT the Grad-CAM weights of
#: Salience-CAM sum to about -0.014 and each channel's salience is alike, so ReLU leaves nothing.
ZERO_MAPS = {("vit-registers", "salience-cam")}
#: Fewer passes than the defaults, to keep the every-method test short.
SHORT = {
    "rise": {"n_masks": 200},
    "ss-cam": {"n_samples": 2},
    "is-cam": {"n_steps": 2},
    "occlusion": {"patch": 8, "stride": 8},
}


@pytest.fixture(scope="module", params=SPECS, ids=[spec.name for spec in SPECS])
def exported(request, tmp_path_factory):
    """(spec, torch model, its ONNX export, inputs)."""
    spec = request.param
    model, path, x = export(spec, tmp_path_factory.mktemp("transformers"))
    return spec, model, path, x


def hooked(model: torch.nn.Module, path: str, x: torch.Tensor):
    """(logits, the module's output with its gradient kept) for inputs x."""
    seen = {}

    def keep(_module, _inputs, output):
        output = output[0] if isinstance(output, tuple) else output
        if output.requires_grad:
            output.retain_grad()
        seen["out"] = output

    handle = model.get_submodule(path).register_forward_hook(keep)
    try:
        logits = model(x)
    finally:
        handle.remove()
    return logits, seen["out"]


def as_map(tensor: torch.Tensor, grid) -> torch.Tensor:
    """pytorch-grad-cam's reshape transform: tokens without the prefix, row-major on (h, w)."""
    if grid is None:
        return tensor
    if grid.layout == "last":
        return tensor.permute(0, 3, 1, 2)
    h, w = grid.size
    cells = tensor[:, grid.prefix :, :]
    return cells.reshape(len(tensor), h, w, -1).permute(0, 3, 1, 2)


def test_auto_picks_the_feature_map_its_module_writes(exported):
    spec, model, path, x = exported
    explainer = Explainer(path, progress=False)
    chosen = explainer.layer_info
    assert chosen.kind_text() == spec.grid
    assert chosen.scope == spec.auto_module
    _, activations = explainer.forward(x)
    with torch.no_grad():
        _, out = hooked(model, spec.auto_module, torch.from_numpy(x))
    want = as_map(out, chosen.grid).numpy()
    assert activations.shape == want.shape
    np.testing.assert_allclose(activations, want, atol=1e-4 * np.abs(want).max())


def test_input_gradients_equal_torch_autograd(exported):
    _, model, path, x = exported
    onnx_model = graph.load(path)
    info = graph.ModelInfo(onnx_model)
    source = info.input.name
    built = backward.build(onnx_model, backward.GRADIENT, [info.logits], [source], [info.logits])
    session = open_session(built)
    tensor = torch.from_numpy(x).requires_grad_()
    logits = model(tensor)
    targets = logits.argmax(1)
    seed = torch.nn.functional.one_hot(targets, logits.shape[1]).float()
    (logits * seed).sum().backward()
    (got,) = session.run(
        [backward.grad_name(source)], {source: x, backward.seed_name(info.logits): seed.numpy()}
    )
    want = tensor.grad.numpy()
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


def test_grad_cam_equals_a_torch_grad_cam_with_the_reshape_convention(exported):
    spec, model, path, x = exported
    explainer = Explainer(path, progress=False)
    result = explainer.explain(x, "grad-cam")
    logits, out = hooked(model, spec.auto_module, torch.from_numpy(x))
    rows = torch.arange(len(x))
    logits[rows, torch.from_numpy(result.targets)].sum().backward()
    activations = as_map(out, explainer.layer_info.grid).detach()
    gradients = as_map(out.grad, explainer.layer_info.grid)
    weights = gradients.mean((2, 3))
    cam = torch.relu((weights[:, :, None, None] * activations).sum(1)).numpy()
    np.testing.assert_allclose(
        result.weights, weights.numpy(), atol=1e-5 * weights.abs().max().item()
    )
    np.testing.assert_allclose(result.raw, cam, atol=1e-5 * max(cam.max(), 1e-12))


@pytest.mark.parametrize("method", methods())
def test_every_method_gives_maps_of_the_input_size(exported, method):
    spec, _, path, x = exported
    explainer = Explainer(path, progress=False)
    if spec.name in ("swin", "convnext", "mobilevit") and method in ATTENTION_METHODS:
        with pytest.raises(LayerError, match=f"{method} reads a transformer's attention"):
            explainer.explain(x, method)
        return  # windows, no attention, attention over folded patches: no global attention
    result = explainer.explain(x, method, **SHORT.get(method, {}))
    assert result.maps.shape == (len(x), SIZE, SIZE)
    assert np.isfinite(result.maps).all()
    assert result.maps.min() >= 0 and result.maps.max() <= 1 + 1e-6
    if (spec.name, method) not in ZERO_MAPS:
        assert np.ptp(result.maps, axis=(1, 2)).max() > 0.5  # a real map, not constant zeros


@pytest.mark.parametrize("composite", ["epsilon-plus", "attn-lrp"])
def test_lrp_relevance_with_what_constants_took_is_the_logit(exported, composite):
    """LayerNorm with its standard deviation held, attention with its probabilities held (or,
    in AttnLRP, through the softmax's Taylor expansion, whose bias term's share is absorbed),
    the class and register tokens' and position embeddings' shares tallied as absorbed. Within
    2 %: the 1e-6 stabilisers take up to 1.6 % of these random models' logits of 1e-3 to 1e-2."""
    _, _, path, x = exported
    result = Explainer(path, progress=False).explain(x, "lrp", composite=composite)
    total = result.metadata["conservation"] + result.metadata["absorbed"]
    np.testing.assert_allclose(total, 1.0, atol=2e-2)


def test_bias_free_vit_relevance_sums_to_the_logit(tmp_path):
    torch.manual_seed(0)
    model = RegisterViT(registers=0).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or name == "position":
                parameter.zero_()
    x = torch.randn(3, 3, SIZE, SIZE)
    from_torch(model, x[:2], tmp_path / "vit.onnx")
    explainer = Explainer(tmp_path / "vit.onnx", progress=False)
    for composite in ("lrp-0", "epsilon", "epsilon-plus", "epsilon-gamma-box", "attn-lrp"):
        result = explainer.explain(x.numpy(), "lrp", composite=composite)
        absorbed = result.metadata["absorbed"]  # the class token's share
        np.testing.assert_allclose(result.metadata["conservation"] + absorbed, 1.0, atol=1e-3)


def test_attention_tensors_are_never_layers(exported):
    _, _, path, _ = exported
    explainer = Explainer(path, progress=False)
    info = explainer.info
    softmax = [n.output[0] for n in info.model.graph.node if n.op_type == "Softmax"]
    listed = {layer.name for layer in explainer.layers()}
    assert not listed & set(softmax)
    for layer in explainer.layers():  # every candidate's axis 0 is the batch
        assert tokens.follows_batch(info, layer.name), layer
    if softmax:
        with pytest.raises(LayerError, match="not a feature map"):
            Explainer(path, layer=softmax[0], progress=False)


class FusedAttention(torch.nn.Module):
    """Scaled dot-product attention over patch tokens: torch writes ONNX's fused Attention op
    at opset 23, which the backward sweep meets as its function body."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 16, 8, 8)
        self.qkv = torch.nn.Linear(16, 48)
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).reshape(x.shape[0], -1, 3, 2, 8).permute(2, 0, 3, 1, 4)
        mixed = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.head(mixed.transpose(1, 2).reshape(x.shape[0], -1, 16).mean(1))


def test_the_fused_attention_op_is_differentiated_through_its_function_body(tmp_path):
    torch.manual_seed(0)
    model = FusedAttention().eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    path = tmp_path / "attention.onnx"
    from_torch(model, x[:2], path, opset=23)
    onnx_model = graph.load(path)
    assert "Attention" in {node.op_type for node in onnx_model.graph.node}
    info = graph.ModelInfo(onnx_model)
    built = backward.build(onnx_model, backward.GRADIENT, [info.logits], [info.input.name])
    tensor = x.clone().requires_grad_()
    logits = model(tensor)
    seed = torch.zeros_like(logits)
    seed[:, 2] = 1.0
    (logits * seed).sum().backward()
    feeds = {info.input.name: x.numpy(), backward.seed_name(info.logits): seed.numpy()}
    (got,) = open_session(built).run([backward.grad_name(info.input.name)], feeds)
    want = tensor.grad.numpy()
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
    result = Explainer(path, progress=False).explain(x.numpy(), "lrp")
    assert np.isfinite(result.relevance).all()
    total = result.metadata["conservation"] + result.metadata["absorbed"]
    np.testing.assert_allclose(total, 1.0, atol=1e-2)


@pytest.mark.parametrize("method", ["score-cam", "recipro-cam", "ablation-cam"])
def test_served_explainer_graphs_equal_explain_at_token_layers(exported, method):
    from onnxcam.serving.explainer.build import build_explainer

    spec, _, path, x = exported
    if spec.name not in ("vit", "swin"):
        pytest.skip("one class-token model and one pooled one")
    served = build_explainer(graph.load(path), method)
    _, targets, maps = open_session(served).run(None, {served.graph.input[0].name: x})
    want = Explainer(path, progress=False).explain(x, method)
    assert np.array_equal(targets, want.targets)
    assert np.abs(maps - want.maps).max() <= 1e-4  # the bound the CNN explainer graphs meet
    assert (maps.max(axis=(1, 2)) > 0.9).all()
