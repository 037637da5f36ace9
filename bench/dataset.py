"""explain-dataset throughput on EfficientNet-Lite0: the local engine against one Explainer fed
pre-loaded batches, and the Ray engine with 2 workers against the local engine.

The dataset is JPEG files written from scikit-image's photos (crops, mirror images). The
reference decodes every input before its clock starts, then builds an Explainer and calls
explain on groups of the engine's size; the engines run explain_dataset end to end (building
their Explainers, listing, decoding, explaining, writing maps, records and the manifest).
Reference and local runs take turns (which goes first alternates) and the ratio is the median
of the rounds' ratios, so drift on this shared machine hits both alike; other_processes_cpu_s
says per round how much CPU other processes took. Ray runs on a local instance with 2 CPUs
started before its clock; each actor runs ORT on 1 thread. The local engine explains
--workers groups at once (its default: 2 on 2 cores or more), each on cores / workers ORT
threads; the reference runs ORT on its default (all cores) unless --threads. A Ray run over 2
inputs measures the actors' start (processes, imports, Explainers), which a large dataset pays
once; the rate after it is (n - 2) / (seconds - that). The first line says how much faster two
processes of a pure-Python loop finish than one run twice (2.0 on two free cores): the
parallelism the machine really gives. Prints one JSON object per line.

    python bench/dataset.py [--images 32] [--methods score-cam,recipro-cam] [--rounds 3] [--no-ray]
        [--threads T] [--workers W] [--npy]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scorecam import OtherLoad, emit

from onnxcam import Explainer
from onnxcam.dataset import Job, explain_dataset
from onnxcam.dataset.inputs import dataset_items
from onnxcam.dataset.local import available_cores, engine_shape
from onnxcam.demo import DEMO_PREPROCESS, efficientnet_lite0_onnx
from onnxcam.io import InputFormat, load_inputs

FORMAT = InputFormat((224, 224), preprocess=DEMO_PREPROCESS)

CHUNK = 8  # inputs per explain call, the CLI default
RATIO_TARGET = 0.95
#: Images per method: Score-CAM costs ~1.3-2 s an image here, ReciproCAM (tail only) ~8 ms.
IMAGES = {"score-cam": 32, "recipro-cam": 384}


def spin(n: int) -> float:
    """Seconds for n steps of a pure-Python loop: CPU work that needs no memory bandwidth."""
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i
    return time.perf_counter() - started


def parallel_speedup(steps: int = 20_000_000, rounds: int = 3) -> dict:
    """How much faster two processes of the same loop finish than one run twice (2.0 on two
    free cores; less where the virtual CPUs share a physical core or a quota)."""
    speedups = []
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(spin, [steps // 10] * 2)
        for _ in range(rounds):
            alone = pool.apply(spin, (steps,))
            together = max(pool.map(spin, [steps] * 2))
            speedups.append(round(2 * alone / together, 2))
    return {"cores": available_cores(), "two_process_speedup": speedups}


def write_photos(folder: Path, n: int) -> None:
    """n distinct JPEGs: sliding crops of four photos, every other one mirrored."""
    from skimage import data

    photos = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = min(h, w) * 3 // 4
        top, left = (i * 17) % (h - side), (i * 29) % (w - side)
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        if (i // len(photos)) % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop.save(folder / f"img{i:04d}.jpg", quality=90)


def decode_cpu_ms(folder: Path) -> float:
    """CPU milliseconds to decode and preprocess one input, alone: the engine's work per input
    that the reference does before its clock."""
    paths = [item.path for item in dataset_items([str(folder)])]
    started = time.thread_time()
    for path in paths:
        load_inputs([path], FORMAT)
    return 1e3 * (time.thread_time() - started) / len(paths)


def reference_rate(model: Path, folder: Path, method: str, threads: int | None) -> float:
    """Inputs/s of one Explainer (built inside the clock) on inputs decoded before it starts,
    CHUNK at a time."""
    paths = [item.path for item in dataset_items([str(folder)])]
    x, _, _ = load_inputs(paths, FORMAT)
    started = time.perf_counter()
    explainer = Explainer(model, progress=False, threads=threads)
    for start in range(0, len(x), CHUNK):
        explainer.explain(x[start : start + CHUNK], method=method)
    return len(x) / (time.perf_counter() - started)


def engine_rate(job: Job, folder: Path, engine: str, workers: int | None = 2) -> float:
    """Inputs/s of explain_dataset end to end into an empty folder."""
    shutil.rmtree(job.out, ignore_errors=True)
    started = time.perf_counter()
    summary = explain_dataset(job, [str(folder)], engine=engine, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    assert summary.ok == summary.total, summary.line()
    return summary.total / seconds


def write_arrays(photos: Path, folder: Path) -> None:
    """The photos preprocessed once, as (1, 3, 224, 224) .npy inputs: no decoding in the run."""
    paths = [item.path for item in dataset_items([str(photos)])]
    x, _, _ = load_inputs(paths, FORMAT)
    for path, array in zip(paths, x, strict=True):
        np.save(folder / f"{Path(path).stem}.npy", array[None])


def bench_method(
    model: Path,
    method: str,
    n: int,
    rounds: int,
    ray: bool,
    work: Path,
    threads: int | None,
    workers: int | None,
    arrays: bool,
) -> None:
    folder = work / f"images-{n}"
    if not folder.exists():
        folder.mkdir()
        write_photos(folder, n)
    if arrays:
        photos, folder = folder, work / f"arrays-{n}"
        if not folder.exists():
            folder.mkdir()
            write_arrays(photos, folder)
    job = Job(str(model), str(work / "out"), method=method, chunk=CHUNK, threads=threads)
    engine_rate(job, folder, "local", workers)  # warm-up: Numba kernels, page cache, sessions
    reference, local, other = [], [], []
    for i in range(rounds):  # taking turns, the first one swapped every round: drift on the
        load = OtherLoad()  # shared machine and being first hit both alike
        if i % 2:
            local.append(engine_rate(job, folder, "local", workers))
        reference.append(reference_rate(model, folder, method, threads))
        if not i % 2:
            local.append(engine_rate(job, folder, "local", workers))
        other.append(load.seconds())
    ratios = [mine / ref for mine, ref in zip(local, reference, strict=True)]
    emit(
        "local_vs_explainer",
        model="efficientnet-lite0",
        method=method,
        images=n,
        chunk=CHUNK,
        reference_ort_threads=threads or "default",
        local_workers=engine_shape(job, workers)[0],
        local_ort_threads=engine_shape(job, workers)[1],
        inputs="npy" if arrays else "jpeg",
        reference_inputs_per_s=[round(r, 3) for r in reference],
        local_inputs_per_s=[round(r, 3) for r in local],
        ratio=round(float(np.median(ratios)), 3),
        ratios=[round(r, 3) for r in ratios],
        target=RATIO_TARGET,
        other_processes_cpu_s=other,
        decode_cpu_ms_per_input=round(decode_cpu_ms(folder), 2),
    )
    if not ray:
        return
    import ray as ray_module

    startup = work / "images-2"
    if not startup.exists():
        startup.mkdir()
        write_photos(startup, 2)
    ray_module.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        ray_job = Job(str(model), str(work / "out-ray"), method=method, chunk=CHUNK)
        distributed = engine_rate(ray_job, folder, "ray")
        start_seconds = 2 / engine_rate(ray_job, startup, "ray")
    finally:
        ray_module.shutdown()
    local_now = engine_rate(job, folder, "local", workers)
    after_start = (n - 2) / (n / distributed - start_seconds)
    emit(
        "ray_vs_local",
        model="efficientnet-lite0",
        method=method,
        images=n,
        workers=2,
        ray_inputs_per_s=round(distributed, 3),
        local_inputs_per_s=round(local_now, 3),
        ratio=round(distributed / local_now, 3),
        ray_two_input_run_s=round(start_seconds, 2),
        ray_inputs_per_s_after_start=round(after_start, 3),
        ratio_after_start=round(after_start / local_now, 3),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="score-cam,recipro-cam")
    parser.add_argument("--images", type=int, default=None, help="images per method")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="ORT threads, both sides")
    parser.add_argument("--workers", type=int, default=None, help="local engine's groups at once")
    parser.add_argument("--npy", action="store_true", help="preprocessed .npy inputs, no JPEGs")
    args = parser.parse_args(argv)
    emit("machine", **parallel_speedup())
    with contextlib.redirect_stdout(sys.stderr):
        model = efficientnet_lite0_onnx()
    with tempfile.TemporaryDirectory() as work:
        for method in args.methods.split(","):
            n = args.images or IMAGES[method]
            bench_method(
                model,
                method,
                n,
                args.rounds,
                not args.no_ray,
                Path(work),
                args.threads,
                args.workers,
                args.npy,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
