"""Torch references for the attention methods, written from their papers, on the `transformers`
package's ViT and DeiT (eager attention, so the probabilities are returned and differentiable):
attention rollout (Abnar & Zuidema 2020), gradient-weighted rollout (Chefer, Gur & Wolf 2021)
and LeGrad (Bousselham et al. 2025, torchcam 0.5's reading and the paper's)."""

from __future__ import annotations

import numpy as np
import torch


def traced(wrapper: torch.nn.Module, x: np.ndarray):
    """(logits, attention probabilities per block, block outputs) with autograd kept."""
    model = wrapper.model
    model.config._attn_implementation = "eager"
    out = model(pixel_values=torch.from_numpy(x), output_attentions=True, output_hidden_states=True)
    return out.logits, list(out.attentions), list(out.hidden_states[1:])


def head(wrapper: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The model's classifier on a sequence of final-block tokens."""
    model = wrapper.model
    if hasattr(model, "vit"):
        return model.classifier(model.vit.layernorm(tokens)[:, 0])
    seq = model.deit.layernorm(tokens)
    return (model.cls_classifier(seq[:, 0]) + model.distillation_classifier(seq[:, 1])) / 2


def rollout(attentions, fusion: str = "mean", discard: float = 0.0) -> torch.Tensor:
    tokens = attentions[0].shape[-1]
    eye = torch.eye(tokens, dtype=torch.float64)
    result = eye.expand(len(attentions[0]), tokens, tokens)
    for a in attentions:
        a = a.detach().double()
        fused = {"mean": a.mean(1), "max": a.amax(1), "min": a.amin(1)}[fusion]
        flat = fused.reshape(len(fused), -1).clone()
        count = int(flat.shape[1] * discard)
        for row in range(len(flat)):
            lowest = torch.topk(flat[row], count, largest=False).indices
            flat[row, lowest[lowest != 0]] = 0
        step = (flat.reshape(fused.shape) + eye) / 2
        step = step / step.sum(-1, keepdim=True)
        result = step @ result
    return result


def gradient_rollout(logits, attentions, targets) -> torch.Tensor:
    score = logits[torch.arange(len(targets)), targets].sum()
    grads = torch.autograd.grad(score, attentions)
    tokens = attentions[0].shape[-1]
    result = torch.eye(tokens, dtype=torch.float64).expand(len(targets), tokens, tokens)
    for a, g in zip(attentions, grads, strict=True):
        weighted = (g.double() * a.detach().double()).clamp(min=0).mean(1)
        result = result + weighted @ result
    return result


def legrad(wrapper, attentions, outputs, targets, prefix: int, mean_tokens: bool) -> torch.Tensor:
    maps = []
    for a, z in zip(attentions, outputs, strict=True):
        read = z.mean(1, keepdim=True).expand_as(z) if mean_tokens else z
        score = head(wrapper, read)[torch.arange(len(targets)), targets].sum()
        (grad,) = torch.autograd.grad(score, a, retain_graph=True)
        maps.append(grad.double().clamp(min=0).mean(dim=(1, 2))[:, prefix:])
    return torch.stack(maps).mean(0)


class EncoderBlock(torch.nn.Module):
    """A pre-norm block laid out as torchvision's ViT's, the layout torchcam's LeGrad hooks."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.self_attention = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(), torch.nn.Linear(2 * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class Encoder(torch.nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, tokens: int) -> None:
        super().__init__()
        self.pos_embedding = torch.nn.Parameter(torch.randn(1, tokens, dim) * 0.1)
        self.layers = torch.nn.ModuleList(EncoderBlock(dim, heads) for _ in range(depth))
        self.ln = torch.nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embedding
        for layer in self.layers:
            x = layer(x)
        return self.ln(x)


class TorchvisionStyleViT(torch.nn.Module):
    """A small ViT with torchvision's module names (conv_proj, class_token, encoder.layers,
    encoder.ln, heads), so that torchcam's LeGrad runs on it unchanged."""

    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 4, classes: int = 5) -> None:
        super().__init__()
        self.conv_proj = torch.nn.Conv2d(3, dim, 8, 8)
        self.class_token = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.encoder = Encoder(dim, depth, heads, 17)
        self.heads = torch.nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], 1)
        return self.heads(self.encoder(tokens)[:, 0])
