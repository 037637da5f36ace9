"""The models of the GPU run (bench/gpu.sh), exported to ONNX: a ResNet-50-shaped network
(bottleneck blocks 3-4-6-3, widths 256-2048, random weights, written here in plain torch) and
the demo's pretrained EfficientNet-Lite0.

    python bench/gpu_models.py --out DIR [--models resnet50,efficientnet-lite0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from onnxcam.demo.efficientnet import efficientnet_lite0_onnx
from onnxcam.exporters import from_torch

MODELS = ("resnet50", "efficientnet-lite0")


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride here), 1x1 expand, with a projected shortcut where shapes change."""

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        out = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and inputs == out
            else nn.Sequential(nn.Conv2d(inputs, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet50_shape(classes: int = 1000) -> nn.Module:
    """ResNet-50's layout (25.6 M parameters) with random weights."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    inputs = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for block in range(blocks):
            layers.append(Bottleneck(inputs, width, 2 if block == 0 and stage > 0 else 1))
            inputs = 4 * width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inputs, classes)]
    return nn.Sequential(*layers).eval()


def export(name: str, out: Path) -> Path:
    """The ONNX file of model `name` under `out`."""
    if name == "efficientnet-lite0":
        return efficientnet_lite0_onnx(out)
    path = out / "resnet50.onnx"
    if not path.exists():
        from_torch(resnet50_shape(), torch.zeros(2, 3, 224, 224), path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the ONNX files")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"gpu_models: unknown model {unknown[0]!r}: expected {', '.join(MODELS)}")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(export(name, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
