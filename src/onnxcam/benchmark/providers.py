"""ONNX Runtime execution providers compared on one model (`onnxcam bench`).

Per provider and batch size: forward throughput and latency p50/p95 of the Explainer's own
session, peak host memory (and device memory on CUDA, from nvidia-smi), explanation seconds per
image for each method, and the largest difference of its maps from the CPU provider's at the
first batch size (the reference: CPU is always measured, first). Each provider runs in a fresh
spawned process, so its peak memory is its own; the process reports each step (a forward
benchmark or a method at one batch size) to the progress bar through a queue and ends by
itself, so what it allocated (semaphores included) is released, not leaked. A provider that
this ONNX Runtime build lacks is reported as skipped, never as a failure. `--fp16` adds a
half-precision run on CUDA (the model converted with onnxconverter-common, inputs and outputs
kept float32); on other providers the fp16 run is reported as skipped, since ORT's CPU kernels
compute fp16 models in float32 anyway. `--int8` adds an int8 run on the CPU and OpenVINO
providers (benchmark/quantize.py); methods that cannot run on the quantized graph (gradients,
LRP) are reported as skipped. Every map is compared with the CPU float32 maps by its largest
difference and its Spearman rank correlation (the median over the inputs).
Results: bench.jsonl (one JSON object per line), bench.md (Markdown tables) and bench.png.
"""

from __future__ import annotations

import io
import multiprocessing
import queue
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxcam.errors import ArgumentError, OnnxcamError

FP16_PROVIDERS = ("cuda",)
INT8_PROVIDERS = ("cpu", "openvino")
FREE_SIZE = 224  # spatial size used where the model's input leaves it free
CALIBRATION_INPUTS = 8  # inputs whose activation ranges set the int8 model's scales


@dataclass(frozen=True)
class Settings:
    model: str
    layer: str
    batch_sizes: tuple[int, ...]
    methods: tuple[str, ...]
    images: int
    rounds: int
    threads: int | None = None


def skip_reason(provider: str, precision: str = "fp32") -> str | None:
    """Why `provider` cannot run here (None when it can); an unknown name is an error."""
    from onnxcam.engine.ort import onnxruntime as ort
    from onnxcam.engine.runner import PROVIDERS

    if provider not in PROVIDERS:
        raise ArgumentError(
            f"unknown provider {provider!r}: expected one of {', '.join(PROVIDERS)}"
        )
    available = ort.get_available_providers()
    if PROVIDERS[provider] not in available:
        return (
            f"{PROVIDERS[provider]} is not in this ONNX Runtime build "
            f"(available: {', '.join(available)})"
        )
    if precision == "fp16" and provider not in FP16_PROVIDERS:
        return f"fp16 is measured on {', '.join(FP16_PROVIDERS)} only"
    if precision == "int8" and provider not in INT8_PROVIDERS:
        return f"int8 is measured on {', '.join(INT8_PROVIDERS)} only"
    return None


def bench_inputs(shape: tuple, n: int, seed: int = 0) -> np.ndarray:
    """n float32 standard-normal inputs of the model's input shape (free sizes: 3 x 224)."""
    fixed = [
        d if isinstance(d, int) else (3 if i == 0 else FREE_SIZE) for i, d in enumerate(shape[1:])
    ]
    return np.random.default_rng(seed).standard_normal((n, *fixed), dtype=np.float32)


def _peak_host_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _device_mib() -> float | None:
    """GPU memory this process holds, from nvidia-smi (None where there is none)."""
    import os

    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    try:
        lines = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in lines.splitlines():
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            return float(used)
    return None


def _load(model_path: str, precision: str):
    from onnxcam.engine import graph

    model = graph.load(model_path)
    if precision == "fp16":
        from onnxconverter_common import float16

        model = float16.convert_float_to_float16(model, keep_io_types=True)
    if precision == "int8":
        from onnxcam.benchmark.quantize import quantized

        shape = graph.model_input(model).shape or ()
        model = quantized(model, bench_inputs(shape, CALIBRATION_INPUTS, seed=2))
    return model


def steps_per_run(settings: Settings) -> int:
    """Progress steps of one provider and precision: per batch size, the forward benchmark and
    each method."""
    return len(settings.batch_sizes) * (1 + len(settings.methods))


def measure(
    settings: Settings,
    provider: str,
    precision: str,
    step: Callable[[str, int], None] = lambda text, n: None,
) -> tuple[list[dict], dict]:
    """Rows for one provider and precision, and its maps per (method, batch size); `step` is
    told what finished and how many progress steps it was."""
    from onnxcam.api import Explainer

    model = _load(settings.model, precision)
    rows: list[dict[str, Any]] = []
    maps: dict[tuple[str, int], np.ndarray] = {}
    base = {"provider": provider, "precision": precision}
    for batch in settings.batch_sizes:
        ex = Explainer(model, settings.layer, provider, batch, settings.threads, progress=False)
        if ex.batch_size != batch:
            rows.append(
                {
                    "bench": "forward",
                    **base,
                    "batch_size": batch,
                    "status": "skipped",
                    "reason": f"the model runs batches of {ex.batch_size} only",
                }
            )
            step(f"{provider} {precision} batch {batch}: skipped", 1 + len(settings.methods))
            continue
        x = bench_inputs(ex.input.shape, batch, seed=1)
        for _ in range(2):  # warm-up: allocations and kernel choice
            ex.runner.run_batch(x, [ex.logits_name])
        latencies = []
        for _ in range(settings.rounds):
            started = time.perf_counter()
            ex.runner.run_batch(x, [ex.logits_name])
            latencies.append(time.perf_counter() - started)
        rows.append(
            {
                "bench": "forward",
                **base,
                "batch_size": batch,
                "status": "ok",
                "images_per_s": round(batch * len(latencies) / sum(latencies), 2),
                "latency_p50_ms": round(1e3 * statistics.median(latencies), 3),
                "latency_p95_ms": round(1e3 * float(np.percentile(latencies, 95)), 3),
                "peak_host_mib": round(_peak_host_mib(), 1),
                "device_mib": _device_mib(),
            }
        )
        step(f"{provider} {precision} batch {batch}: forward", 1)
        images = bench_inputs(ex.input.shape, settings.images)
        for method in settings.methods:
            try:
                ex.explain(images[:1], method)  # warm-up: compiled kernels, the tail's session
            except OnnxcamError as err:
                if precision != "int8":
                    raise
                reason = f"not on the int8 graph: {err}"[:200]
                row = {"bench": "explain", **base, "batch_size": batch, "method": method}
                rows.append({**row, "status": "skipped", "reason": reason})
                step(f"{provider} {precision} batch {batch}: {method} skipped", 1)
                continue
            started = time.perf_counter()
            result = ex.explain(images, method)
            seconds = time.perf_counter() - started
            maps[(method, batch)] = result.maps
            rows.append(
                {
                    "bench": "explain",
                    **base,
                    "batch_size": batch,
                    "method": method,
                    "status": "ok",
                    "seconds_per_image": round(seconds / len(images), 4),
                    "peak_host_mib": round(_peak_host_mib(), 1),
                    "device_mib": _device_mib(),
                }
            )
            step(f"{provider} {precision} batch {batch}: {method}", 1)
    return rows, maps


def add_differences(rows: list[dict], maps: dict, reference: dict, batch: int) -> None:
    """Set max_abs_diff_vs_cpu and rank_corr_vs_cpu on explain rows: against the CPU float32
    maps at `batch` per method."""
    for row in rows:
        if row["bench"] == "explain" and row["status"] == "ok":
            ref = reference.get((row["method"], batch))
            got = maps[(row["method"], row["batch_size"])]
            row["max_abs_diff_vs_cpu"] = None if ref is None else float(np.abs(got - ref).max())
            row["rank_corr_vs_cpu"] = None if ref is None else rank_correlation(got, ref)


def rank_correlation(maps: np.ndarray, reference: np.ndarray) -> float | None:
    """The median over inputs of the Spearman correlation of two maps' pixels; None where
    SciPy (the `metrics` extra) is missing or a map is constant."""
    try:
        from scipy.stats import spearmanr
    except ImportError:
        return None
    values = []
    for a, b in zip(maps, reference, strict=True):
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            values.append(float(spearmanr(a.ravel(), b.ravel())[0]))
    return round(float(np.median(values)), 4) if values else None


def _measure_and_report(settings: Settings, provider: str, precision: str, messages) -> None:
    """The spawned process's work: measure, sending ("step", text, n) as it goes, then
    ("done", result) or ("error", exception)."""
    try:
        result = measure(settings, provider, precision, lambda t, n: messages.put(("step", t, n)))
    except Exception as err:  # re-raised in the parent, as if measured there
        messages.put(("error", err, 0))
    else:
        messages.put(("done", result, 0))


def _in_fresh_process(settings: Settings, provider: str, precision: str, bar) -> tuple:
    """measure() in a spawned process (Numba's OpenMP layer is not fork-safe), its steps shown
    on `bar`. The process returns on its own (it is not terminated), so its semaphores are
    released."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    worker = context.Process(
        target=_measure_and_report, args=(settings, provider, precision, messages)
    )
    worker.start()
    try:
        while True:
            try:
                kind, payload, steps = messages.get(timeout=1.0)
            except queue.Empty:
                if not worker.is_alive():
                    raise RuntimeError(
                        f"the benchmark process for {provider} {precision} ended without a "
                        f"result (exit code {worker.exitcode})"
                    ) from None
                continue
            if kind == "step":
                bar.set_postfix_str(payload, refresh=False)
                bar.update(steps)
            elif kind == "error":
                raise payload
            else:
                return payload
    finally:
        worker.join()
        messages.close()
        messages.join_thread()


def run_bench(
    settings: Settings,
    providers: list[str],
    fp16: bool,
    progress: bool = True,
    int8: bool = False,
):
    """All rows: CPU first (the maps' reference), then the other providers; skips recorded."""
    from tqdm.auto import tqdm

    order = ["cpu", *[p for p in dict.fromkeys(providers) if p != "cpu"]]
    runs = [(p, "fp32") for p in order] + ([(p, "fp16") for p in order] if fp16 else [])
    runs += [(p, "int8") for p in order] if int8 else []
    reasons = {run: run_skip_reason(*run) for run in runs}
    measured = sum(reason is None for reason in reasons.values())
    rows: list[dict] = []
    reference: dict = {}
    bar = tqdm(total=measured * steps_per_run(settings), desc="bench", disable=not progress)
    with bar:
        for provider, precision in runs:
            reason = reasons[(provider, precision)]
            if reason is not None:
                rows.append(
                    {
                        "bench": "provider",
                        "provider": provider,
                        "precision": precision,
                        "status": "skipped",
                        "reason": reason,
                    }
                )
                continue
            got, maps = _in_fresh_process(settings, provider, precision, bar)
            if provider == "cpu" and precision == "fp32":
                reference = maps
            add_differences(got, maps, reference, settings.batch_sizes[0])
            rows.extend(got)
    return rows


def run_skip_reason(provider: str, precision: str) -> str | None:
    """Why a provider and precision cannot run here (None when it can)."""
    reason = skip_reason(provider, precision)
    if reason is None and precision == "fp16":
        try:
            import onnxconverter_common  # noqa: F401
        except ImportError:
            reason = "fp16 needs onnxconverter-common (pip install 'onnxcam[gpu]')"
    return reason


def markdown(rows: list[dict]) -> str:
    """Markdown tables of the forward and explain rows, and a list of what was skipped."""

    def fmt(v):
        return (
            "-"
            if v is None
            else (f"{v:.2e}" if isinstance(v, float) and 0 < abs(v) < 1e-3 else str(v))
        )

    forward = [r for r in rows if r["bench"] == "forward" and r["status"] == "ok"]
    explain = [r for r in rows if r["bench"] == "explain"]
    lines = [
        "| provider | precision | batch | images/s | p50 ms | p95 ms | peak host MiB "
        "| device MiB |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['provider']} | {r['precision']} | {r['batch_size']} | {r['images_per_s']} | "
            f"{r['latency_p50_ms']} | {r['latency_p95_ms']} | {r['peak_host_mib']} | "
            f"{fmt(r['device_mib'])} |"
            for r in forward
        ),
        "",
        "| provider | precision | method | batch | s/image | max abs diff vs CPU "
        "| rank corr vs CPU | peak host MiB |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['provider']} | {r['precision']} | {r['method']} | {r['batch_size']} | "
            f"{r['seconds_per_image']} | {fmt(r.get('max_abs_diff_vs_cpu'))} | "
            f"{fmt(r.get('rank_corr_vs_cpu'))} | {r['peak_host_mib']} |"
            for r in explain
            if r["status"] == "ok"
        ),
    ]
    skipped = [r for r in rows if r["status"] == "skipped"]
    if skipped:
        lines += [
            "",
            *(
                f"- skipped: {r['provider']} {r['precision']}"
                f"{' batch ' + str(r['batch_size']) if 'batch_size' in r else ''}: "
                f"{r['reason']}"
                for r in skipped
            ),
        ]
    return "\n".join(lines) + "\n"


def plot_png(rows: list[dict]) -> bytes:
    """Throughput and explanation time against batch size, one line per provider (and method)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    series: dict[tuple, list] = {}
    for r in rows:
        if r["status"] == "ok" and r["bench"] in ("forward", "explain"):
            key = (r["bench"], r["provider"], r["precision"], r.get("method"))
            value = r["images_per_s"] if r["bench"] == "forward" else r["seconds_per_image"]
            series.setdefault(key, []).append((r["batch_size"], value))
    for (bench, provider, precision, method), points in series.items():
        axis = left if bench == "forward" else right
        label = " ".join(p for p in (provider, precision, method) if p)
        axis.plot(*zip(*sorted(points), strict=True), marker="o", label=label)
    for axis, title in ((left, "forward images/s"), (right, "explanation s/image")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("batch size")
        axis.set_title(title)
        if axis.lines:
            axis.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
