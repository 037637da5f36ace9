"""Small transformers and modern CNNs with random weights: the `transformers` package's ViT,
DeiT (distilled: two prefix tokens), Swin, ConvNeXt and MobileViT, and a ViT with register
tokens written here, each with the module whose output `auto` should pick and its grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from toy_models import he_init, unit_outputs

SIZE = 32  # input side: grids of 4x4 (patch 8) for the ViTs


class Logits(nn.Module):
    """A `transformers` image classifier as pixels -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


class Block(nn.Module):
    """A pre-norm transformer block: multi-head self-attention, then a GELU MLP."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(n, t, d))
        return x + self.mlp(self.norm2(x))


class RegisterViT(nn.Module):
    """A pre-norm ViT with a class token and `registers` register tokens (Darcet et al., ICLR
    2024): patch embedding, blocks, the class token's LayerNorm, a linear head."""

    def __init__(self, dim=32, depth=2, heads=4, patch=8, registers=4, classes=5) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.registers = nn.Parameter(torch.randn(1, registers, dim))
        self.position = nn.Parameter(torch.randn(1, (SIZE // patch) ** 2, dim) * 0.1)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2) + self.position
        n = x.shape[0]
        x = torch.cat([self.cls.expand(n, -1, -1), self.registers.expand(n, -1, -1), tokens], 1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


@dataclass(frozen=True)
class Spec:
    """A test model: its builder, the module `auto` should pick, and that layer's grid."""

    name: str
    build: object
    auto_module: str
    grid: str


def _vit_config(config_class):
    """The toy size of the ViT family: 32 px, patch 8, 2 blocks of width 32, 4 heads."""
    return config_class(
        image_size=SIZE,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=5,
    )


def _vit():
    import transformers

    return Logits(transformers.ViTForImageClassification(_vit_config(transformers.ViTConfig)))


def _deit():
    import transformers

    config = _vit_config(transformers.DeiTConfig)
    return Logits(transformers.DeiTForImageClassificationWithTeacher(config))


def _swin():
    import transformers

    config = transformers.SwinConfig(
        image_size=SIZE,
        patch_size=2,
        embed_dim=16,
        depths=[1, 1],
        num_heads=[2, 2],
        window_size=4,
        num_labels=5,
    )
    model = transformers.SwinForImageClassification(config)
    model.config._attn_implementation = "eager"
    return Logits(model)


def _convnext():
    import transformers

    config = transformers.ConvNextConfig(
        hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=5, image_size=SIZE
    )
    return Logits(transformers.ConvNextForImageClassification(config))


def _mobilevit():
    import transformers

    config = transformers.MobileViTConfig(
        image_size=SIZE,
        hidden_sizes=[16, 24, 32],
        neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32],
        num_labels=5,
    )
    # The package's N(0, 0.02) convolutions, BatchNorms at their initial statistics, shrink the
    # activations 1e-45 times by the last stage, and He weights still 1e-4 times: the logits
    # would not depend on the input. Each layer is rescaled to unit output on random inputs.
    model = Logits(he_init(transformers.MobileViTForImageClassification(config))).eval()
    calibration = torch.randn(8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    return unit_outputs(model, calibration)


SPECS = (
    Spec("vit", _vit, "model.vit.layers.1.layernorm_before", "tokens 1+4x4"),
    Spec("deit", _deit, "model.deit.layers.1.layernorm_before", "tokens 2+4x4"),
    Spec("swin", _swin, "model.swin.layernorm", "tokens 0+8x8"),
    Spec("convnext", _convnext, "model.convnext.encoder.stages.1.layers.0", "map"),
    Spec(
        "mobilevit",
        _mobilevit,
        "model.mobilevit.encoder.layer.4.downsampling_layer.expand_1x1.activation",
        "map",
    ),
    Spec("vit-registers", RegisterViT, "blocks.1.norm1", "tokens 5+4x4"),
)


def build(spec: Spec, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return spec.build().eval()


def export(spec: Spec, folder: Path) -> tuple[nn.Module, Path, np.ndarray]:
    """The spec's model with random weights, its ONNX export (an example batch of 2) and three
    fixed inputs."""
    from onnxcam.exporters import from_torch

    model = build(spec)
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    path = folder / f"{spec.name}.onnx"
    from_torch(model, x[:2], path)
    return model, path, x.numpy()
