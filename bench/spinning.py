"""ORT's idle-thread spinning on and off: seconds per method for the same 8 photos on
EfficientNet-Lite0, each setting in its own fresh process (sessions are cached per process),
the two settings taking turns over the rounds. Spinning off is the library's default
(`engine.runner.INTRA_OP_SPINNING`); `speedup` = best time with spinning on / best time off.
Prints one JSON object per method.

    python bench/spinning.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

from scorecam import emit
from sr_map import best_of, model_inputs, photos

#: Methods of many short runs and of few long ones, shortened where they run thousands of passes.
METHODS = {
    "recipro-cam": {},
    "ablation-cam": {},
    "grad-cam": {},
    "lrp": {},
    "score-cam": {"max_channels": 96},
    "rise": {"n_masks": 512},
}


def timings(spinning: str) -> dict[str, float]:
    """Best of 2 seconds per method with ORT's spinning set to `spinning` ("0" or "1")."""
    from onnxcam import Explainer
    from onnxcam.demo import efficientnet_lite0_onnx
    from onnxcam.engine import runner

    runner.INTRA_OP_SPINNING = spinning
    x = model_inputs(list(photos().values()) * 2)
    explainer = Explainer(efficientnet_lite0_onnx(), progress=False)
    out = {}
    for method, options in METHODS.items():
        explainer.explain(x[:1], method=method, **options)  # sessions, kernels, graphs
        out[method] = best_of(lambda m=method, o=options: explainer.explain(x, method=m, **o), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")  # a fresh ORT and Numba per setting
    runs: dict[str, list[dict[str, float]]] = {"1": [], "0": []}
    started = time.perf_counter()
    for _ in range(args.rounds):
        for spinning in runs:
            with context.Pool(1) as pool:
                runs[spinning].append(pool.apply(timings, (spinning,)))
    for method in METHODS:
        on = [run[method] for run in runs["1"]]
        off = [run[method] for run in runs["0"]]
        emit(
            "spinning",
            method=method,
            images=8,
            spinning_on_s=[round(t, 3) for t in on],
            spinning_off_s=[round(t, 3) for t in off],
            speedup=round(min(on) / min(off), 2),
        )
    emit("spinning_total", seconds=round(time.perf_counter() - started, 1))


if __name__ == "__main__":
    main()
