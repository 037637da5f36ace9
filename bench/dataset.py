"""explain-dataset throughput on EfficientNet-Lite0: the local engine against one Explainer fed
pre-loaded batches, and the Ray engine with 2 workers against the local engine.

The dataset is JPEG files written from scikit-image's photos (crops, mirror images). The
reference decodes every input before its clock starts and calls Explainer.explain on groups of
the same size as the engine's; the engines are timed end to end (listing the inputs, decoding,
explaining, writing maps and records, the manifest). Reference and local runs take turns, so
drift on this shared machine hits both alike. Ray runs on a local instance with 2 CPUs started
before its clock; each actor runs ORT on 1 thread, the local engine on ORT's default (all cores).
Prints one JSON object per line.

    python bench/dataset.py [--images 24] [--methods score-cam,recipro-cam] [--rounds 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import contextlib
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
from onnxcam.dataset.ray_engine import explain_ray
from onnxcam.demo import DEMO_PREPROCESS, efficientnet_lite0_onnx
from onnxcam.io import load_inputs

CHUNK = 8  # inputs per explain call, the CLI default
RATIO_TARGET = 0.95
#: Images per method: Score-CAM costs ~1.3 s an image here, ReciproCAM (tail only) ~40 ms.
IMAGES = {"score-cam": 24, "recipro-cam": 96}


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


def reference_rate(model: Path, folder: Path, method: str) -> float:
    """Inputs/s of one warm Explainer on pre-loaded groups of CHUNK inputs."""
    explainer = Explainer(model, progress=False)
    paths = [item.path for item in dataset_items([str(folder)])]
    x, _, _ = load_inputs(paths, (224, 224), DEMO_PREPROCESS, 3)
    explainer.explain(x[:1], method=method)  # Numba kernels compiled, session warm
    started = time.perf_counter()
    for start in range(0, len(x), CHUNK):
        explainer.explain(x[start : start + CHUNK], method=method)
    return len(x) / (time.perf_counter() - started)


def engine_rate(job: Job, folder: Path, engine: str) -> float:
    """Inputs/s of explain_dataset end to end, into an empty output folder."""
    shutil.rmtree(job.out, ignore_errors=True)
    started = time.perf_counter()
    summary = explain_dataset(job, [str(folder)], engine=engine, workers=2, progress=False)
    seconds = time.perf_counter() - started
    assert summary.ok == summary.total, summary.line()
    return summary.total / seconds


def ray_steady_rate(job: Job, folder: Path) -> float:
    """Inputs/s of the Ray engine after its first group came back (actors started and warm)."""
    shutil.rmtree(job.out, ignore_errors=True)
    Path(job.out).mkdir(parents=True)
    items = dataset_items([str(folder)])
    first = None
    done = 0
    for rows in explain_ray(job, items, workers=2):
        if first is None:
            first = time.perf_counter()
        else:
            done += len(rows)
    return done / (time.perf_counter() - first)


def bench_method(model: Path, method: str, n: int, rounds: int, ray: bool, work: Path) -> None:
    folder = work / f"images-{n}"
    if not folder.exists():
        folder.mkdir()
        write_photos(folder, n)
    job = Job(str(model), str(work / "out"), method=method, chunk=CHUNK)
    engine_rate(job, folder, "local")  # warm-up: Numba cache, page cache, session
    reference, local = [], []
    load = OtherLoad()
    for _ in range(rounds):
        reference.append(reference_rate(model, folder, method))
        local.append(engine_rate(job, folder, "local"))
    ratio = float(np.median(local) / np.median(reference))
    emit(
        "local_vs_explainer",
        model="efficientnet-lite0",
        method=method,
        images=n,
        chunk=CHUNK,
        reference_inputs_per_s=[round(r, 3) for r in reference],
        local_inputs_per_s=[round(r, 3) for r in local],
        ratio=round(ratio, 3),
        target=RATIO_TARGET,
        other_processes_cpu_s=load.seconds(),
    )
    if not ray:
        return
    import ray as ray_module

    ray_module.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        ray_job = Job(str(model), str(work / "out-ray"), method=method, chunk=CHUNK)
        whole = engine_rate(ray_job, folder, "ray")
        steady = ray_steady_rate(ray_job, folder)
        local_now = engine_rate(job, folder, "local")
    finally:
        ray_module.shutdown()
    emit(
        "ray_vs_local",
        model="efficientnet-lite0",
        method=method,
        images=n,
        workers=2,
        ray_inputs_per_s=round(whole, 3),
        ray_steady_inputs_per_s=round(steady, 3),
        local_inputs_per_s=round(local_now, 3),
        ratio=round(whole / local_now, 3),
        steady_ratio=round(steady / local_now, 3),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="score-cam,recipro-cam")
    parser.add_argument("--images", type=int, default=None, help="images per method")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):
        model = efficientnet_lite0_onnx()
    with tempfile.TemporaryDirectory() as work:
        for method in args.methods.split(","):
            n = args.images or IMAGES[method]
            bench_method(model, method, n, args.rounds, not args.no_ray, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
