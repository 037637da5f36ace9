"""A process that explains once (`onnxcam.explain`, the command line's explain): building the
Explainer plus its one call, warmed at construction or not, on EfficientNet-Lite0 and one image.

Each measurement runs in a fresh process (the Numba cache already warm, as after install), the
two settings alternating, and reports the median of `--rounds` processes per setting.

    cd bench && PYTHONPATH=../src python one_shot.py [--rounds 5] [--methods eigen-cam,...]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scorecam import emit

METHODS = ("eigen-cam", "grad-cam", "score-cam")


def once(path: str, method: str, warm: bool) -> tuple[float, float]:
    """In a fresh process: the Explainer built, then one call; seconds of each."""
    import onnxcam

    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    started = time.perf_counter()
    explainer = onnxcam.Explainer(path, progress=False, warm=warm)
    built = time.perf_counter()
    explainer.explain(x, method)
    return built - started, time.perf_counter() - built


def in_fresh_process(path: str, method: str, warm: bool) -> tuple[float, float]:
    """`once` in a spawned process (not forked: GNU OpenMP must not fork)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(once, (path, method, warm))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    from onnxcam.demo import efficientnet_lite0_onnx

    with contextlib.redirect_stdout(sys.stderr):
        path = str(efficientnet_lite0_onnx())
    for method in args.methods.split(","):
        times = {True: [], False: []}
        for _ in range(args.rounds):
            for warm in (True, False):
                times[warm].append(in_fresh_process(path, method, warm))
        median = {warm: np.median(np.array(t), axis=0) for warm, t in times.items()}
        emit(
            "one_shot",
            method=method,
            warm_build_ms=round(median[True][0] * 1e3, 1),
            warm_call_ms=round(median[True][1] * 1e3, 1),
            cold_build_ms=round(median[False][0] * 1e3, 1),
            cold_call_ms=round(median[False][1] * 1e3, 1),
            warm_over_cold=round(float(median[True].sum() / median[False].sum()), 2),
        )


if __name__ == "__main__":
    main()
