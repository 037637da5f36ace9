"""Per-call latency of one-image explanations on EfficientNet-Lite0: what onnxcam adds around
the passes it runs, warm, on the first call, and on cores that other processes keep busy.

For each method, in one process: 50 calls of `explain` on one image, interleaved with its
reference, the bare ONNX Runtime work of the passes it needs (one forward for Eigen-CAM; one
forward plus the tail's backward graph for Grad-CAM; one forward plus the tail runs of its
mosaics or ablated channels for ReciproCAM and tail Ablation-CAM, from the tail's global average
pool where they start there; one forward plus its masked
passes for Faster Score-CAM), through the same sessions at the same batch sizes. Then the same
again while two other processes spin on the same cores. The first call is measured in a fresh
process right after building its Explainer (the Numba cache already warm, as after install).

Prints one JSON line per method: warm p50 and p95 of the call and of the reference, the
overhead (p50 call - p50 reference), the first call over the warm p50, the contended ratio
(call over reference, both under contention), and whether each stays within its limit.

    python bench/latency.py [--calls 50] [--methods eigen-cam,grad-cam,...]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scorecam import emit

import onnxcam
from onnxcam.demo import efficientnet_lite0_onnx

METHODS = ("eigen-cam", "grad-cam", "recipro-cam", "ablation-cam", "faster-score-cam")
#: The targets: call p50 within this factor of the reference, overhead below OVERHEAD_MS, the
#: first call within FIRST_CALL of a warm one, contended calls within CONTENDED of the reference.
WARM = {"eigen-cam": 1.2, "grad-cam": 1.2, "recipro-cam": 1.2, "ablation-cam": 1.2}
OVERHEAD_MS = 1.5
FIRST_CALL = 2.0
CONTENDED = 2.0


def reference(explainer: onnxcam.Explainer, method: str, x: np.ndarray) -> Callable[[], None]:
    """The bare ORT work of one call of `method` on x, through the explainer's own sessions."""
    views = explainer.views
    result = explainer.explain(x, method)
    passes = int(result.metadata.get("passes_run", 0))

    def forward():
        return explainer.runner.run_batch(x, [explainer.logits_name, views.layer_output])

    _, acts = forward()
    if method == "eigen-cam":
        return forward
    if method == "grad-cam":
        tail = views._tail_backward
        seed = np.zeros((1, result.logits.shape[1]), np.float32)
        feeds = tail.seed_feeds({views.logits: seed})
        name = onnxcam.engine.backward.grad_name(views.layer)
        return lambda: (forward(), tail.run_batch(acts, [name], feeds))
    if method in ("recipro-cam", "ablation-cam"):
        tail, items = views.tail, acts
        if result.metadata["pooled"]:  # the graph after the tail's global average pool
            mean, tail = views.pooled
            items = mean.of(acts)
        batch = int(max(8, min(1024, 8 * np.prod(x.shape[1:]) / np.prod(items.shape[1:]))))
        block = np.repeat(items, batch, 0)

        def tail_passes():
            forward()
            for start in range(0, passes, batch):
                rows = min(batch, passes - start)
                tail.run_batch(block[:rows], [views.logits])

        return tail_passes
    block = np.repeat(x, explainer.batch_size, 0)

    def masked_passes():
        forward()
        for start in range(0, passes, explainer.batch_size):
            rows = min(explainer.batch_size, passes - start)
            explainer.runner.run_batch(block[:rows], [explainer.logits_name])

    return masked_passes


def interleaved(call, ref, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of n calls and n references, one after the other."""
    calls, refs = [], []
    for _ in range(n):
        started = time.perf_counter()
        call()
        calls.append(time.perf_counter() - started)
        started = time.perf_counter()
        ref()
        refs.append(time.perf_counter() - started)
    return np.array(calls), np.array(refs)


def spin(stop) -> None:
    """Keep one core busy until `stop` is set."""
    while not stop.is_set():
        sum(range(10_000))


@contextlib.contextmanager
def contention(processes: int = 2):
    """Other processes spinning on the machine's cores."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = [context.Process(target=spin, args=(stop,)) for _ in range(processes)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        stop.set()
        for w in workers:
            w.join()


def first_call(path: str, method: str) -> tuple[float, float]:
    """In a fresh process: build the Explainer, time its first call and its next ones."""
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    explainer = onnxcam.Explainer(path, progress=False)
    started = time.perf_counter()
    explainer.explain(x, method)
    first = time.perf_counter() - started
    warm = []
    for _ in range(10):
        started = time.perf_counter()
        explainer.explain(x, method)
        warm.append(time.perf_counter() - started)
    return first, float(np.median(warm))


def fresh_first_call(path: str, method: str) -> tuple[float, float]:
    """`first_call` in a spawned process (not forked: GNU OpenMP must not fork)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(first_call, (path, method))


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):
        path = str(efficientnet_lite0_onnx())
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    explainer = onnxcam.Explainer(path, progress=False)
    for method in args.methods.split(","):
        first, warm_after = fresh_first_call(path, method)
        ref = reference(explainer, method, x)
        call = lambda m=method: explainer.explain(x, m)  # noqa: E731
        interleaved(call, ref, 3)  # warm both
        calls, refs = interleaved(call, ref, args.calls)
        with contention():
            busy_calls, busy_refs = interleaved(call, ref, max(10, args.calls // 2))
        p50, ref50 = np.median(calls), np.median(refs)
        contended = float(np.median(busy_calls) / np.median(busy_refs))
        limit = WARM.get(method)
        emit(
            "latency",
            method=method,
            call_p50_ms=ms(p50),
            call_p95_ms=ms(np.percentile(calls, 95)),
            reference_p50_ms=ms(ref50),
            reference_p95_ms=ms(np.percentile(refs, 95)),
            ratio=round(float(p50 / ref50), 3),
            ratio_limit=limit,
            overhead_ms=ms(p50 - ref50),
            overhead_ok=bool((p50 - ref50) * 1e3 <= OVERHEAD_MS),
            first_call_ms=ms(first),
            first_over_warm=round(first / warm_after, 2),
            first_ok=bool(first / warm_after <= FIRST_CALL),
            contended_call_p50_ms=ms(np.median(busy_calls)),
            contended_reference_p50_ms=ms(np.median(busy_refs)),
            contended_ratio=round(contended, 2),
            contended_ok=contended <= CONTENDED,
        )


if __name__ == "__main__":
    main()
