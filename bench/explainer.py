"""The explainer exported as one ONNX graph against the host pipeline, on the CPU provider.

For each model and method: seconds per image of `Explainer.explain` (batched ORT with Numba
kernels between the passes, CPU default batch 8) and of one run of the exported graph
(`onnxcam export-explainer`, chunk 16: perturbations, resize and normalisation in-graph) on the
same inputs, alternating, best of `rounds`; their ratio, and the largest map difference. The
in-graph Score-CAM skips the channels constant in every image; the host also shares equal
masks, so `passes_host` says how much work the host did. Prints one JSON object per line.

    python bench/explainer.py [--quick] [--models resnet18,efficientnet-lite0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from scorecam import FULL, MODELS, QUICK, emit, load_efficientnet, load_resnet18

import onnxcam
from onnxcam.engine.runner import open_session
from onnxcam.serving.explainer import DEFAULT_CHUNK, build_explainer

METHODS = ("score-cam", "ablation-cam", "recipro-cam")


def best_of(rounds: int, fn) -> tuple[float, object]:
    """Smallest wall time of `rounds` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def compare(name: str, path: Path, layer: str, x: np.ndarray, rounds: int) -> None:
    explainer = onnxcam.Explainer(path, layer=layer, progress=False)
    for method in METHODS:
        started = time.perf_counter()
        graph = build_explainer(onnx.load(path), method, layer, DEFAULT_CHUNK)
        build_seconds = time.perf_counter() - started
        session = open_session(graph)
        feed = session.get_inputs()[0].name
        explainer.explain(x[:1], method)  # warm-up: kernels compiled, tail session opened
        session.run(None, {feed: x[:1]})
        host_s, host = best_of(rounds, lambda m=method: explainer.explain(x, m))
        graph_s, (_, _, maps) = best_of(rounds, lambda s=session, f=feed: s.run(None, {f: x}))
        emit(
            "explainer_graph",
            model=name,
            method=method,
            images=len(x),
            chunk=DEFAULT_CHUNK,
            build_seconds=round(build_seconds, 2),
            graph_mib=round(graph.ByteSize() / 2**20, 1),
            passes_host=host.metadata.get("passes_run"),
            host_s_per_image=round(host_s / len(x), 4),
            graph_s_per_image=round(graph_s / len(x), 4),
            ratio_graph_vs_host=round(graph_s / host_s, 3),
            max_abs_diff=float(np.abs(maps - host.maps).max()),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 image, 1 round")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = load_resnet18(Path(tmp), settings) if name == "resnet18" else None
            model = model or load_efficientnet(settings)
            compare(name, model.onnx_path, model.layer, model.inputs, settings.scorecam_rounds)


if __name__ == "__main__":
    main()
