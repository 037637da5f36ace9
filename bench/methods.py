"""Every method on a ResNet-18-shaped model and on EfficientNet-Lite0: passes, seconds per image,
the ratio to the bare inference time of those passes, and peak memory.

Each measurement runs in a fresh process of its own (the Numba kernels are compiled and cached
once beforehand), which opens its Explainer, explains one image, then runs the same number of
passes through the same graph on distinct random inputs at the same batch size: the inference
limit, measured right after on the same machine. Feature-space methods (ablation-cam,
recipro-cam) run the graph's tail, so their limit is the tail's. Prints one JSON object per line.

    python bench/methods.py [--quick] [--models resnet18,efficientnet-lite0] [--methods rise,...]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scorecam import MODELS, QUICK, Model, emit, load_efficientnet, load_resnet18

import onnxcam
from onnxcam.engine.graph import CHANNEL_SCALE
from onnxcam.engine.runner import Runner

BATCH_SIZE = 8  # the CPU default
POOL = 32  # distinct inputs cycled through by the reference passes
RATIO_TARGET = 1.05
ABLATION_SPEEDUP_TARGET = 5.0
#: Options per measured variant; smaller than the defaults where those take minutes per image.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "score-cam": ("score-cam", {}),
    "faster-score-cam": ("faster-score-cam", {}),
    "ss-cam": ("ss-cam", {"n_samples": 4}),
    "is-cam": ("is-cam", {"n_steps": 4}),
    "ablation-cam": ("ablation-cam", {}),
    "ablation-cam-full": ("ablation-cam", {"mode": "full"}),
    "recipro-cam": ("recipro-cam", {}),
    "rise": ("rise", {"n_masks": 1000}),
    "rise-4000": ("rise", {"n_masks": 4000}),
    "occlusion": ("occlusion", {"patch": 32, "stride": 16}),
    "eigen-cam": ("eigen-cam", {}),
}
QUICK_SKIP = {"rise-4000", "ss-cam", "is-cam"}


def current_rss_mib() -> float:
    """Resident memory of this process now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def reference(explainer: onnxcam.Explainer, graph: str, passes: int, x: np.ndarray, layer_shape):
    """Seconds of one forward pass of x plus `passes` distinct random inputs through the graph a
    method used, at the batch size it used.

    graph: "full" (the model), "tail" (after the layer; fed random activations and the tensors
    that cross the cut), "pooled" (after the tail's global average pool; fed random means) or
    "scaled" (the model with a channel scale at the layer).
    """
    rng = np.random.default_rng(5)
    views = explainer.views
    extra: dict[str, np.ndarray] = {}
    batch_size = BATCH_SIZE
    if graph in ("tail", "pooled"):
        runner: Runner = views.tail
        if graph == "pooled":
            mean, runner = views.pooled
            layer_shape = mean.of(np.zeros((1, *layer_shape), np.float32)).shape[1:]
        pool = rng.random((POOL * 8, *layer_shape), np.float32)
        extra = views.crossing(x[:1], 1)
        ratio = np.prod(x.shape[1:]) / np.prod(layer_shape)  # as Context.tail_batch_size
        batch_size = int(max(BATCH_SIZE, min(1024, BATCH_SIZE * ratio)))
    else:
        runner = views.scaled if graph == "scaled" else views.full
        pool = rng.standard_normal((POOL, *x.shape[1:]), np.float32)
        if graph == "scaled":
            extra = {CHANNEL_SCALE: np.ones((1, layer_shape[0]), np.float32)}
    started = time.perf_counter()
    views.full.run_batch(x, [views.logits])  # every method's own first forward pass
    for start in range(0, passes, batch_size):
        first = start % len(pool)
        batch = pool[first : first + min(batch_size, passes - start, len(pool) - first)]
        feeds = {name: np.repeat(value, len(batch), axis=0) for name, value in extra.items()}
        runner.run_batch(batch, [views.logits], feeds)
    return time.perf_counter() - started


def measure(onnx_path: Path, layer: str, x: np.ndarray, variant: str) -> dict[str, Any]:
    """One method on one image, then its inference limit; run in a child process."""
    method, options = VARIANTS[variant]
    explainer = onnxcam.Explainer(onnx_path, layer=layer, batch_size=BATCH_SIZE, progress=False)
    explainer.explain(x, method="score-cam", max_channels=2)  # load the kernels from the cache
    graph = "full"
    if method in ("ablation-cam", "recipro-cam"):
        graph = "scaled" if options.get("mode") == "full" else "tail"
        # one-time set-up, not per image: cut or rewrite the graph, open its session
        _ = explainer.views.scaled if graph == "scaled" else explainer.views.crossing(x, 1)
    explainer.forward(x)
    rss_before = current_rss_mib()
    started = time.perf_counter()
    result = explainer.explain(x, method=method, **options)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    passes = result.metadata["passes_run"]
    layer_shape = result.metadata["layer_shape"]
    if result.metadata.get("pooled"):
        graph = "pooled"
    limit = reference(explainer, graph, passes, x, layer_shape)
    return {
        "method": method,
        "options": options,
        "graph": graph,
        "passes_run": passes,
        "passes_skipped": result.metadata.get("passes_skipped", 0),
        "seconds_per_image": round(seconds, 3),
        "limit_seconds": round(limit, 3),
        "ratio_vs_limit": round(seconds / limit, 3),
        "peak_rss_increase_mib": round(peak - rss_before, 1),
        "map": result.maps[0],
    }


def in_child(model: Model, variant: str) -> dict[str, Any]:
    """Measure in a fresh process: its own ORT thread pools and peak RSS. (Not forked: a process
    that used GNU OpenMP, Numba's default threading layer on Linux, must not fork.)"""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(measure, (model.onnx_path, model.layer, model.inputs[:1], variant))


def warm_up(directory: Path) -> None:
    """Compile every kernel the methods use on a small model, so that Numba's cache has them."""
    import torch

    from onnxcam.exporters import from_torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    )
    with contextlib.redirect_stdout(sys.stderr):
        path = from_torch(net, torch.randn(2, 3, 16, 16), directory / "tiny.onnx", ["1"]).path
    explainer = onnxcam.Explainer(path, layer="1", progress=False)
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16), np.float32)
    for method, options in VARIANTS.values():
        small = {k: min(v, 8) if isinstance(v, int) else v for k, v in options.items()}
        explainer.explain(x, method=method, **small)


def bench_model(model: Model, variants: list[str]) -> None:
    maps: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for variant in variants:
        row = in_child(model, variant)
        maps[variant] = row.pop("map")
        seconds[variant] = row["seconds_per_image"]
        emit(
            "method",
            model=model.name,
            variant=variant,
            batch_size=BATCH_SIZE,
            **row,
            ratio_target=RATIO_TARGET,
            ratio_met=row["ratio_vs_limit"] <= RATIO_TARGET,
        )
    if {"ablation-cam", "ablation-cam-full"} <= set(variants):
        speedup = seconds["ablation-cam-full"] / seconds["ablation-cam"]
        emit(
            "ablation_tail_vs_full",
            model=model.name,
            speedup=round(speedup, 1),
            target=ABLATION_SPEEDUP_TARGET,
            met=speedup >= ABLATION_SPEEDUP_TARGET,
            max_abs_diff_maps=float(np.abs(maps["ablation-cam"] - maps["ablation-cam-full"]).max()),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slowest variants")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--methods", default=",".join(VARIANTS), help="variants to measure")
    args = parser.parse_args(argv)
    variants = [v for v in args.methods.split(",") if v and not (args.quick and v in QUICK_SKIP)]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        warm_up(Path(tmp))
        for name in args.models.split(","):
            model = (
                load_resnet18(Path(tmp), QUICK) if name == "resnet18" else load_efficientnet(QUICK)
            )
            bench_model(model, variants)
    emit("process", seconds=round(time.perf_counter() - started, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
