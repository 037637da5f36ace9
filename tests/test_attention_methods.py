"""The attention methods (attention rollout, gradient-weighted rollout, LeGrad) on the
`transformers` package's ViT and DeiT against torch references written from their papers
(tests/attention_reference.py), LeGrad against torchcam 0.5 itself, and what they need."""

from __future__ import annotations

import attention_reference as ref
import numpy as np
import pytest
import torch
from transformer_models import SIZE, SPECS, export

from onnxcam import Explainer
from onnxcam.engine import graph
from onnxcam.engine.graph import attention
from onnxcam.errors import LayerError
from onnxcam.exporters import from_torch

pytest.importorskip("transformers", reason="transformers is a test dependency (make test)")

CLASS_TOKEN = [s for s in SPECS if s.name in ("vit", "deit")]
METHODS = ("attention-rollout", "gradient-rollout", "legrad")


@pytest.fixture(scope="module", params=CLASS_TOKEN, ids=[s.name for s in CLASS_TOKEN])
def model(request, tmp_path_factory):
    """(torch model, its ONNX export, inputs, prefix tokens)."""
    spec = request.param
    torch_model, path, x = export(spec, tmp_path_factory.mktemp("attention"))
    return torch_model, path, x, 1 if spec.name == "vit" else 2


def grid_of(matrix: torch.Tensor, prefix: int) -> np.ndarray:
    row = matrix[:, 0, prefix:] if matrix.ndim == 3 else matrix
    return row.detach().numpy().reshape(len(row), 4, 4)


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """Within 1e-4 of the reference's largest value, and not a zero map."""
    scale = np.abs(want).max()
    assert scale > 0
    np.testing.assert_allclose(got, want, atol=1e-4 * scale, rtol=0)


def test_the_blocks_attention_is_found_whatever_its_name(model):
    _, path, _, prefix = model
    found = attention.find(graph.inline_function_ops(graph.load(path)))
    assert [a.block for a in found] == [0, 1]
    assert all(a.heads == 4 and a.grid.prefix == prefix and a.grid.size == (4, 4) for a in found)
    assert all(f"layers.{a.block}.attention" in a.scope for a in found)


@pytest.mark.parametrize(("fusion", "discard"), [("mean", 0.0), ("max", 0.0), ("min", 0.5)])
def test_attention_rollout_equals_the_paper(model, fusion, discard):
    torch_model, path, x, prefix = model
    with torch.no_grad():
        _, attentions, _ = ref.traced(torch_model, x)
    want = grid_of(ref.rollout(attentions, fusion, discard), prefix)
    options = {"head_fusion": fusion, "discard_ratio": discard}
    got = Explainer(path, progress=False).explain(x, "attention-rollout", **options)
    assert_close(got.raw, want)
    assert got.maps.shape == (3, SIZE, SIZE)


def test_gradient_rollout_equals_the_paper(model):
    torch_model, path, x, prefix = model
    result = Explainer(path, progress=False).explain(x, "gradient-rollout")
    logits, attentions, _ = ref.traced(torch_model, x)
    np.testing.assert_allclose(result.logits, logits.detach().numpy(), atol=1e-4)
    want = ref.gradient_rollout(logits, attentions, torch.from_numpy(result.targets))
    assert_close(result.raw, grid_of(want, prefix))


@pytest.mark.parametrize("profile", ["torchcam", "paper"])
def test_legrad_equals_its_reference(model, profile):
    torch_model, path, x, prefix = model
    result = Explainer(path, progress=False).explain(x, "legrad", profile=profile)
    _, attentions, outputs = ref.traced(torch_model, x)
    targets = torch.from_numpy(result.targets)
    want = ref.legrad(torch_model, attentions, outputs, targets, prefix, profile == "torchcam")
    assert_close(result.raw, grid_of(want, prefix))


def test_legrad_last_blocks(model):
    torch_model, path, x, prefix = model
    result = Explainer(path, progress=False).explain(x, "legrad", blocks=1)
    _, attentions, outputs = ref.traced(torch_model, x)
    targets = torch.from_numpy(result.targets)
    want = ref.legrad(torch_model, attentions[-1:], outputs[-1:], targets, prefix, True)
    assert_close(result.raw, grid_of(want, prefix))
    with pytest.raises(ValueError, match="at most the model's 2 blocks, got 3"):
        Explainer(path, progress=False).explain(x, "legrad", blocks=3)


@pytest.mark.parametrize("method", METHODS)
def test_a_batch_of_three_equals_three_single_calls(model, method):
    _, path, x, _ = model
    explainer = Explainer(path, progress=False)
    batch = explainer.explain(x, method)
    singles = np.concatenate([explainer.explain(x[i : i + 1], method).maps for i in range(3)])
    np.testing.assert_allclose(batch.maps, singles, atol=1e-5)


def test_legrad_equals_torchcam(tmp_path):
    legrad = pytest.importorskip("torchcam.methods").LeGrad
    torch.manual_seed(0)
    model = ref.TorchvisionStyleViT().eval()
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    from_torch(model, x[:2], tmp_path / "vit.onnx")
    result = Explainer(tmp_path / "vit.onnx", progress=False).explain(x.numpy(), "legrad")
    with legrad(model, list(model.encoder.layers)) as extractor:
        scores = model(x)
        (want,) = extractor(result.targets.tolist(), scores, normalized=False)
    np.testing.assert_allclose(result.logits, scores.detach().numpy(), atol=1e-5)
    assert_close(result.raw, want.detach().numpy())
    with legrad(model, list(model.encoder.layers)) as extractor:
        (normalised,) = extractor(result.targets.tolist(), model(x))
    low = result.raw.min(axis=(1, 2), keepdims=True)
    spread = result.raw.max(axis=(1, 2), keepdims=True) - low
    assert_close((result.raw - low) / (spread + 1e-8), normalised.numpy())  # torchcam's min-max


class IdentityAttention(torch.nn.Module):
    """A ViT whose every token attends only to itself: the query-key product times 0 plus a
    large diagonal."""

    def __init__(self, dim: int = 16, depth: int = 2, heads: int = 2) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, dim, 8, 8)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.qkv = torch.nn.ModuleList(torch.nn.Linear(dim, 2 * dim) for _ in range(depth))
        self.register_buffer("diagonal", 1e4 * torch.eye(17))
        self.heads, self.head = heads, torch.nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], 1)
        n, t, d = x.shape
        for qkv in self.qkv:
            q, k = qkv(x).reshape(n, t, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
            attention = torch.softmax(q @ k.transpose(-1, -2) * 0.0 + self.diagonal, -1)
            x = x + (attention @ x.reshape(n, t, self.heads, -1).transpose(1, 2)).transpose(
                1, 2
            ).reshape(n, t, d)
        return self.head(x[:, 0])


def test_rollout_of_identity_attention_is_uniform(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(2, 3, SIZE, SIZE)
    from_torch(IdentityAttention().eval(), x, tmp_path / "identity.onnx")
    result = Explainer(tmp_path / "identity.onnx", progress=False).explain(
        x.numpy(), "attention-rollout"
    )
    assert result.metadata["blocks"] == 2
    np.testing.assert_allclose(result.raw, 0.0, atol=1e-12)  # the class token keeps to itself
    assert (result.maps == result.maps[:, :1, :1]).all()  # one value everywhere
    assert result.metadata["constant_maps"] == [True, True]


@pytest.mark.parametrize("method", METHODS)
def test_a_cnn_has_no_attention_to_read(resnet_onnx, method):
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(LayerError, match=rf"{method} reads a transformer's attention.*has none"):
        Explainer(resnet_onnx, progress=False).explain(x, method)


def test_layers_lists_each_blocks_attention(model, capsys):
    from onnxcam.cli import main

    _, path, _, prefix = model
    assert main(["layers", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("attention probabilities"))
    blocks = lines[start + 1 :]
    assert [line.split()[:2] for line in blocks] == [["block", "0"], ["block", "1"]]
    assert all(
        f"(batch, 4, {prefix + 16}, {prefix + 16})  tokens {prefix}+4x4" in b for b in blocks
    )


def test_fused_attention_is_read_through_its_function_body(tmp_path):
    """torch writes scaled_dot_product_attention as ONNX's fused Attention op (opset 23); a
    model that pools its tokens has no class token: the rollouts take the mean row."""
    from test_transformers import FusedAttention

    torch.manual_seed(0)
    model = FusedAttention().eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    from_torch(model, x[:2], tmp_path / "fused.onnx", opset=23)
    assert "Attention" in {n.op_type for n in graph.load(tmp_path / "fused.onnx").graph.node}
    explainer = Explainer(tmp_path / "fused.onnx", progress=False)
    result = explainer.explain(x.numpy(), "gradient-rollout")
    tokens = model.patch(x).flatten(2).transpose(1, 2)
    q, k, v = model.qkv(tokens).reshape(3, -1, 3, 2, 8).permute(2, 0, 3, 1, 4)
    probabilities = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1)
    mixed = (probabilities @ v).transpose(1, 2).reshape(3, -1, 16).mean(1)
    logits = model.head(mixed)
    np.testing.assert_allclose(result.logits, logits.detach().numpy(), atol=1e-5)
    want = ref.gradient_rollout(logits, [probabilities], torch.from_numpy(result.targets))
    assert_close(result.raw, want.mean(1).detach().numpy().reshape(3, 4, 4))
    rollout = explainer.explain(x.numpy(), "attention-rollout")
    want = ref.rollout([probabilities]).mean(1).numpy().reshape(3, 4, 4)
    assert_close(rollout.raw, want)
