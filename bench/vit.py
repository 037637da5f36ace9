"""A ViT-B/16-shaped model (224 px, 12 blocks of width 768, random weights from the
`transformers` package): Grad-CAM through the ONNX backward graph against torch autograd, and
ViT-ReciproCAM and Score-CAM against the inference limit of the passes they run, same run.

Prints one JSON line per measurement:
- `gradcam`: seconds per image of `explain(method="grad-cam")` at the auto token layer, and of
  a torch Grad-CAM at the same module (forward, autograd backward to that layer, pytorch-grad-
  cam's reshape: class token dropped, 14 x 14 grid), their ratio;
- `passes`: seconds per image of recipro-cam and score-cam against the same number of plain
  ONNX Runtime passes of the graph each one runs (the tail after the layer for ReciproCAM's 196
  mosaics, the whole model for Score-CAM's masked inputs), at the same batch size.

    python bench/vit.py [--images 2] [--batch 16]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from scorecam import best_of, emit
from transformer_models import Logits

import onnxcam
from onnxcam.exporters import from_torch


def vit_b16() -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(num_labels=1000)  # 224 px, patch 16, 12 x 768, 12 heads
    return Logits(transformers.ViTForImageClassification(config)).eval()


@contextlib.contextmanager
def exported(images: int, batch: int):
    """(torch model, inputs, onnxcam Explainer of its export) for the ViT-B/16 shape."""
    model = vit_b16()
    x = np.random.default_rng(0).standard_normal((images, 3, 224, 224)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vit-b16.onnx"
        from_torch(model, torch.from_numpy(x[:2]), path)
        yield model, x, onnxcam.Explainer(path, batch_size=batch, progress=False)


def torch_gradcam(model, module: str, x: np.ndarray) -> None:
    seen = {}
    handle = model.get_submodule(module).register_forward_hook(
        lambda _m, _i, out: seen.__setitem__("a", out[0] if isinstance(out, tuple) else out)
    )
    try:
        xt = torch.from_numpy(x)
        logits = model(xt)
        acts = seen["a"]
        acts.retain_grad()
        logits[torch.arange(len(x)), logits.argmax(1)].sum().backward()
        tokens = acts[:, 1:].reshape(len(x), 14, 14, -1).permute(0, 3, 1, 2)
        grads = acts.grad[:, 1:].reshape(len(x), 14, 14, -1).permute(0, 3, 1, 2)
        torch.relu((grads.mean((2, 3), keepdim=True) * tokens).sum(1))
    finally:
        handle.remove()


def ort_passes(runner, inputs: np.ndarray, feeds: dict, count: int, batch: int, outputs) -> None:
    """`count` passes of `runner` in batches of `batch` (the limit a method's passes set)."""
    for start in range(0, count, batch):
        rows = min(batch, count - start)
        extra = {name: np.repeat(value[:1], rows, 0) for name, value in feeds.items()}
        runner.run_batch(np.repeat(inputs[:1], rows, 0), outputs, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with exported(args.images, args.batch) as (model, x, explainer):
        module = explainer.layer_info.scope
        explainer.explain(x[:1], "grad-cam")  # builds the backward graph
        ours = best_of(lambda: explainer.explain(x, "grad-cam")) / len(x)
        theirs = best_of(lambda: torch_gradcam(model, module, x)) / len(x)
        emit(
            "gradcam",
            layer=explainer.layer,
            grid=explainer.layer_info.kind_text(),
            onnxcam_s_per_image=round(ours, 4),
            torch_s_per_image=round(theirs, 4),
            speedup=round(theirs / ours, 2),
        )
        views = explainer.views
        _, acts = explainer.forward(x[:1])
        crossing = views.crossing(x[:1], 1)
        graphs = {"recipro-cam": (views.tail, acts, crossing), "score-cam": (views.full, x[:1], {})}
        for method, (runner, inputs, feeds) in graphs.items():
            started = time.perf_counter()
            result = explainer.explain(x[:1], method)
            run = time.perf_counter() - started
            count = int(result.metadata["passes_run"])
            limit = best_of(
                lambda r=runner, i=inputs, f=feeds, c=count: ort_passes(
                    r, i, f, c, args.batch, [views.logits]
                ),
                rounds=1,
            )
            emit(
                "passes",
                method=method,
                passes=count,
                method_s_per_image=round(run, 3),
                passes_s_per_image=round(limit, 3),
                ratio=round(run / limit, 2),
            )


if __name__ == "__main__":
    main()
