"""The README's transformer pictures: a small ViT (class token, four register tokens) trained
for a minute on a synthetic task (which of three shapes lies somewhere on a noisy 64 x 64
picture), exported, and explained by Grad-CAM and ReciproCAM at `auto` (the last block's input),
and by the attention methods (attention rollout, gradient rollout, LeGrad, AttnLRP). A trained
model, because random weights give maps of nothing.

    python docs/img/vit_shapes.py   # writes docs/img/vit-shapes.png and vit-attention.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from transformer_models import Block  # noqa: E402

from onnxcam import Explainer  # noqa: E402
from onnxcam.exporters import from_torch  # noqa: E402
from onnxcam.io.pictures import overlay  # noqa: E402

SIZE, PATCH, CLASSES = 64, 8, ("square", "disc", "cross")


class ShapesViT(torch.nn.Module):
    def __init__(self, dim=64, depth=4, heads=4, registers=4) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, dim, PATCH, PATCH)
        self.cls = torch.nn.Parameter(torch.zeros(1, 1 + registers, dim))
        self.position = torch.nn.Parameter(torch.randn(1, (SIZE // PATCH) ** 2, dim) * 0.02)
        self.blocks = torch.nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2) + self.position
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], 1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def pictures(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, 64, 64) pictures in [0, 1] with one shape each, and the shapes' classes."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    x = rng.uniform(0.2, 0.5, (n, 3, 1, 1)) + rng.normal(0, 0.08, (n, 3, SIZE, SIZE))
    labels = rng.integers(0, len(CLASSES), n)
    for i, label in enumerate(labels):
        cy, cx = rng.integers(10, SIZE - 10, 2)
        dy, dx = np.abs(yy - cy), np.abs(xx - cx)
        mask = [
            (dy <= 6) & (dx <= 6),
            dy**2 + dx**2 <= 49,
            ((dy <= 1) & (dx <= 7)) | ((dx <= 1) & (dy <= 7)),
        ][label]
        x[i, :, mask] = rng.uniform(0.7, 1.0, 3)
    return np.clip(x, 0, 1).astype(np.float32), labels


def train(model: torch.nn.Module, steps: int = 700) -> None:
    rng = np.random.default_rng(0)
    optimiser = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01)
    for _ in range(steps):
        x, y = pictures(64, rng)
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def main() -> None:
    torch.manual_seed(0)
    model = ShapesViT()
    train(model)
    model.eval()
    x, labels = pictures(4, np.random.default_rng(1))
    with torch.no_grad():
        print("accuracy on 512 new pictures:", end=" ")
        test, truth = pictures(512, np.random.default_rng(2))
        print((model(torch.from_numpy(test)).argmax(1).numpy() == truth).mean())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vit.onnx"
        from_torch(model, torch.from_numpy(x[:2]), path)
        explainer = Explainer(path, progress=False)
        print("layer:", explainer.layer, explainer.layer_info.kind_text())
        maps = [explainer.explain(x, m).maps for m in ("grad-cam", "recipro-cam")]
        save(x, maps, "vit-shapes.png")
        attention = [explainer.explain(x, m).maps for m in ATTENTION[:3]]
        attention.append(explainer.explain(x, "lrp", composite="attn-lrp").maps)
        save(x, attention, "vit-attention.png")
    print("classes:", [CLASSES[c] for c in labels])


ATTENTION = ("attention-rollout", "gradient-rollout", "legrad")


def save(x: np.ndarray, maps: list[np.ndarray], name: str) -> None:
    """Rows of the input and its overlays, one per map, written under docs/img."""
    rows = []
    for i in range(len(x)):
        image = (x[i].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        row = [image] + [overlay(m[i], image) for m in maps]
        rows.append(np.concatenate(row, 1))
    columns = len(maps) + 1
    picture = Image.fromarray(np.concatenate(rows, 0)).resize((columns * 160, len(x) * 160), 0)
    picture.save(ROOT / "docs" / "img" / name)


if __name__ == "__main__":
    main()
