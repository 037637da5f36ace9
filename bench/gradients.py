"""Grad-CAM through ONNX backward graphs against torch autograd on the same model and machine.

Prints one JSON line per measurement:
- `build`: seconds to build the backward graph (full model and tail) and open its session;
- `gradcam`: seconds per image of `Explainer.explain(method="grad-cam")` (forward, then the
  tail's backward graph) and of a torch Grad-CAM (forward, autograd backward to the layer only:
  parameters do not require gradients, weights, ReLU, bilinear resize, min-max) at each batch
  size, their ratio, and the largest difference between the two maps;
- `backward`: seconds per image of the backward graph from the class score to the input
  (forward and backward through the whole network, as Salience-CAM's passes run) against torch
  forward + backward to the input.

    python bench/gradients.py [--quick] [--models resnet18,efficientnet-lite0]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from road import best_of
from scorecam import FULL, MODELS, QUICK, TORCH_THREADS, Model, emit, load_efficientnet
from scorecam import load_resnet18 as export_resnet18

import onnxcam
from onnxcam.engine import backward, graph

BATCH_SIZES = (1, 8, 32)


def torch_gradcam(model: Model, x: np.ndarray, batch: int) -> np.ndarray:
    """Grad-CAM maps (N, H, W) by torch autograd, the engine's post-processing."""
    maps = []
    for lo in range(0, len(x), batch):
        xt = torch.from_numpy(x[lo : lo + batch])
        acts = model.features(xt).requires_grad_(True)
        logits = model.head(acts)
        classes = logits.argmax(1)
        logits[torch.arange(len(xt)), classes].sum().backward()
        with torch.no_grad():
            weights = acts.grad.mean((2, 3), keepdim=True)
            cam = torch.relu((weights * acts).sum(1, keepdim=True))
            cam = torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear")[:, 0]
            lo_, hi = cam.flatten(1).min(1)[0], cam.flatten(1).max(1)[0]
            maps.append(((cam - lo_[:, None, None]) / (hi - lo_ + 1e-8)[:, None, None]).numpy())
    return np.concatenate(maps)


def torch_input_gradient(model: Model, x: np.ndarray, batch: int) -> None:
    """Forward, and backward from the class score to the input."""
    for lo in range(0, len(x), batch):
        xt = torch.from_numpy(x[lo : lo + batch]).requires_grad_(True)
        logits = model.forward(xt)
        logits[torch.arange(len(xt)), logits.argmax(1)].sum().backward()


def measure(model: Model, images: int, rounds: int) -> None:
    onnx_model = graph.load(model.onnx_path)
    explainer = onnxcam.Explainer(model.onnx_path, layer=model.layer, progress=False)
    layer = explainer.layer
    logits = graph.logits_tensor(onnx_model)
    source = graph.model_input(onnx_model).name
    started = time.perf_counter()
    backward.build(onnx_model, backward.GRADIENT, [logits], [layer])
    full_build = time.perf_counter() - started
    started = time.perf_counter()
    tail_runner = explainer.views._tail_backward
    tail_open = time.perf_counter() - started
    emit(
        "build",
        model=model.name,
        full_graph_seconds=round(full_build, 3),
        tail_graph_and_session_seconds=round(tail_open, 3),
        tail_used=tail_runner is not None,
    )
    x = np.concatenate([model.inputs] * -(-images // len(model.inputs)))[:images]
    full_runner = explainer.views.backward((logits,), (source,))
    seed = np.eye(1000, dtype=np.float32)[explainer.forward(x)[0].argmax(1)]
    for batch in BATCH_SIZES:
        explainer.batch_size = batch
        ours = explainer.explain(x, method="grad-cam")
        reference = torch_gradcam(model, x, batch)
        onnx_seconds = best_of(rounds, lambda: explainer.explain(x, method="grad-cam"))
        torch_seconds = best_of(rounds, partial(torch_gradcam, model, x, batch))
        emit(
            "gradcam",
            model=model.name,
            batch=batch,
            images=images,
            onnxcam_s_per_image=round(onnx_seconds / images, 4),
            torch_s_per_image=round(torch_seconds / images, 4),
            speedup=round(torch_seconds / onnx_seconds, 2),
            max_map_diff=float(np.abs(ours.maps - reference).max()),
        )
        feeds = full_runner.seed_feeds({explainer.views.logits: seed})
        name = backward.grad_name(source)
        full_seconds = best_of(rounds, partial(full_runner.run, x, [name], batch, feeds))
        torch_full = best_of(rounds, partial(torch_input_gradient, model, x, batch))
        emit(
            "backward",
            model=model.name,
            batch=batch,
            ort_input_gradient_s_per_image=round(full_seconds / images, 4),
            torch_input_gradient_s_per_image=round(torch_full / images, 4),
            speedup=round(torch_full / full_seconds, 2),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    torch.set_num_threads(TORCH_THREADS)
    torch.set_grad_enabled(True)
    images, rounds = (8, 1) if args.quick else (32, 2)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            with contextlib.redirect_stdout(sys.stderr):
                model = (
                    export_resnet18(Path(folder), settings)
                    if name == "resnet18"
                    else load_efficientnet(settings)
                )
            for module in (model.features, model.head):
                owner = getattr(module, "__self__", None)
                if isinstance(owner, torch.nn.Module):
                    owner.requires_grad_(False)  # gradients of activations only, as the engine
            measure(model, images, rounds)


if __name__ == "__main__":
    main()
