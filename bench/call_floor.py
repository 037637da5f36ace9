"""What an explain call costs besides its method's work, on EfficientNet-Lite0 and one image:
ONNX Runtime's first runs of a fresh session (before construction settled them), the call with
a method that does nothing against the bare forward pass (each with the ORT run inside it
timed, to tell ORT's time from the call's own), and Eigen-CAM's decomposition alone,
right after a forward pass, and right after sweeping 32 MB instead; then Faster Score-CAM's
ONNX Runtime runs timed one by one inside its calls and inside its reference (the same runs, as
bench/latency.py makes it), to tell their time from the work around them, and the steps of its
calls outside ORT timed one by one (the masked inputs, the channel choice, the combination).

    cd bench && PYTHONPATH=../src python call_floor.py [--calls 300]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
from scorecam import emit

import onnxcam
import onnxcam.api as api
from onnxcam.demo import efficientnet_lite0_onnx
from onnxcam.engine import blas, warmup
from onnxcam.engine.methods import base
from onnxcam.engine.methods.base import MethodOutput
from onnxcam.engine.methods.eigen_cam import first_component
from onnxcam.engine.methods.parts import masking
from onnxcam.engine.runner import Runner


class Nothing:
    """A method that returns fixed maps: what is left of a call is the call itself."""

    uses_layer, uses_gradients = True, False

    def explain(self, ctx):
        n = len(ctx.x)
        return MethodOutput(
            np.zeros((n, *ctx.activations.shape[2:]), np.float32),
            np.zeros((n, *ctx.input_size), np.float32),
        )


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def median_ms(run, before, calls: int) -> float:
    """Median of `run` over calls, each right after `before` (untimed)."""
    times = []
    for _ in range(calls):
        if before is not None:
            before()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return ms(float(np.median(times[calls // 10 :])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):
        path = efficientnet_lite0_onnx()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    runs = warmup.SETTLE_RUNS
    warmup.SETTLE_RUNS = 1  # a fresh Explainer as before construction settled its sessions
    fresh = onnxcam.Explainer(path, progress=False)
    warmup.SETTLE_RUNS = runs
    views = fresh.views
    forward = lambda: views.full.run_batch(x, [views.logits, views.layer_output])  # noqa: E731
    first_runs = []
    for _ in range(6):
        started = time.perf_counter()
        forward()
        first_runs.append(ms(time.perf_counter() - started))
    emit("first_forward_runs", ms=first_runs)

    explainer = onnxcam.Explainer(path, progress=False)
    views = explainer.views
    create = api.create
    api.create = lambda method, **options: Nothing()
    whole, inside = interleaved(
        {"call": lambda: explainer.explain(x, "nothing"), "forward": forward}, args.calls, skip=0
    )
    api.create = create
    emit(
        "call_floor",
        call_ms=whole["call"],
        forward_ms=whole["forward"],
        floor_ms=round(whole["call"] - whole["forward"], 3),
        call_ort_ms=inside["call"],
        forward_ort_ms=inside["forward"],
    )

    _, acts = forward()
    big = np.ones(8_000_000, np.float32)

    def decompose():
        with blas.single_threaded():
            first_component(acts[0])

    def sweep():
        big.__iadd__(1)

    emit(
        "eigen_decomposition",
        alone_ms=median_ms(decompose, None, args.calls),
        after_forward_ms=median_ms(decompose, forward, args.calls),
        after_32mb_sweep_ms=median_ms(decompose, sweep, args.calls),
    )

    runs_inside(explainer, x, args.calls // 3)
    steps_inside(explainer, x, args.calls // 3)


@contextlib.contextmanager
def timing(owner: object, name: str, times: list[float]) -> Iterator[None]:
    """While the context lasts, owner.name adds the seconds of each of its calls to times[-1]."""
    function = getattr(owner, name)

    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times[-1] += time.perf_counter() - started

    setattr(owner, name, timed)
    try:
        yield
    finally:
        setattr(owner, name, function)


def interleaved(
    works: dict[str, Callable[[], object]], calls: int, skip: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Each work `calls` times, interleaved: median ms per work of the whole run and of the ORT
    runs inside it, over the calls after the first `skip`."""
    ort: list[float] = []
    whole: dict[str, list[float]] = {name: [] for name in works}
    inside: dict[str, list[float]] = {name: [] for name in works}
    with timing(Runner, "_run", ort):
        for _ in range(calls):
            for name, work in works.items():
                ort.append(0.0)
                started = time.perf_counter()
                work()
                whole[name].append(time.perf_counter() - started)
                inside[name].append(ort[-1])

    def medians(times: dict[str, list[float]]) -> dict[str, float]:
        return {name: ms(float(np.median(values[skip:]))) for name, values in times.items()}

    return medians(whole), medians(inside)


def runs_inside(explainer: onnxcam.Explainer, x: np.ndarray, calls: int) -> None:
    """Faster Score-CAM's calls against its reference, interleaved, with every ORT run timed."""
    views = explainer.views
    block = np.repeat(x, explainer.batch_size, 0)

    def reference():  # one forward pass, then 10 masked rows at the call's batch size
        explainer.runner.run_batch(x, [explainer.logits_name, views.layer_output])
        for start in range(0, 10, explainer.batch_size):
            rows = min(explainer.batch_size, 10 - start)
            explainer.runner.run_batch(block[:rows], [explainer.logits_name])

    whole, inside = interleaved(
        {"call": lambda: explainer.explain(x, "faster-score-cam"), "reference": reference},
        calls,
        skip=calls // 10,
    )
    emit(
        "faster_score_cam_runs",
        call_ms=whole["call"],
        call_ort_ms=inside["call"],
        reference_ms=whole["reference"],
        reference_ort_ms=inside["reference"],
    )


#: Faster Score-CAM's steps outside ORT: (module, function) as its call looks them up.
STEPS = (
    (masking, "masked_inputs"),
    (base, "top_std_channels"),
    (masking, "distinct_maps"),
    (masking, "channel_softmax"),
    (base, "map_spread"),
    (base, "combine"),
)


def steps_inside(explainer: onnxcam.Explainer, x: np.ndarray, calls: int) -> None:
    """Median ms per Faster Score-CAM call of each step around its ORT runs, and the rest."""
    spent: dict[str, list[float]] = {name: [] for _, name in STEPS}
    ort: list[float] = []
    whole = []
    with contextlib.ExitStack() as stack:
        for module, name in STEPS:
            stack.enter_context(timing(module, name, spent[name]))
        stack.enter_context(timing(Runner, "_run", ort))
        for _ in range(calls):
            for times in (*spent.values(), ort):
                times.append(0.0)
            started = time.perf_counter()
            explainer.explain(x, "faster-score-cam")
            whole.append(time.perf_counter() - started)
    skip = calls // 10
    steps = {name: np.array(times[skip:]) for name, times in spent.items()}
    outside = np.array(whole[skip:]) - np.array(ort[skip:])
    rest = outside - sum(steps.values())
    emit(
        "faster_score_cam_steps",
        outside_ort_ms=ms(float(np.median(outside))),
        **{f"{name}_ms": ms(float(np.median(times))) for name, times in steps.items()},
        rest_ms=ms(float(np.median(rest))),
    )


if __name__ == "__main__":
    main()
