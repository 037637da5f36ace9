"""Score-CAM speed: onnxcam against ONNX Runtime's own throughput and a pure-torch Score-CAM.

For each model: ORT's and torch's throughput per batch size, onnxcam's Score-CAM at ORT's best
batch size (and its time over the ideal passes_run / throughput), and the same Score-CAM in
torch; then onnxcam's resize kernel against torch's. Prints one JSON object per line on stdout,
each with a "bench" key naming the measurement; the libraries' own output goes to stderr.
Ratios matter more than absolute times: each compares runs made on one machine minutes apart.

    python bench/scorecam.py [--quick] [--models resnet18,efficientnet-lite0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numba
import numpy as np
import onnxruntime
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import references  # the torch references of the tests

import onnxcam
from onnxcam.demo import DEMO_PREPROCESS, demo_photo, efficientnet_lite0, efficientnet_lite0_onnx
from onnxcam.exporters import from_torch
from onnxcam.io import fit_image
from onnxcam.kernels import masked_inputs, resize_normalize, weighted_sum

MODELS = ("resnet18", "efficientnet-lite0")
BATCH_SIZES = (1, 8, 16, 32, 64)
SIZE = (224, 224)
ORT_ROUND_IMAGES = 128  # images per batch size in one round of the ORT throughput sweep
TORCH_ROUND_IMAGES = 64  # the same for torch, which is slower
POOL_IMAGES = 64  # distinct inputs cycled through by every reference run
TORCH_THREADS = 2
RATIO_TARGET = 1.03
SPEEDUP_TARGET = 2.0

Forward = Callable[[np.ndarray], object]  # one forward pass of a batch


@dataclass(frozen=True)
class Settings:
    """How much to measure."""

    images: int  # images explained per model
    sweep_rounds: int  # rounds of the ORT throughput sweep
    torch_rounds: int  # rounds of the torch throughput sweep
    scorecam_rounds: int  # timed Score-CAM runs per implementation
    kernel_runs: int  # timed runs of each resize kernel


FULL = Settings(images=2, sweep_rounds=3, torch_rounds=1, scorecam_rounds=2, kernel_runs=15)
QUICK = Settings(images=1, sweep_rounds=1, torch_rounds=1, scorecam_rounds=1, kernel_runs=5)


@dataclass
class Model:
    """A benchmarked model: its torch module split at the target layer, and its ONNX file."""

    name: str
    features: Callable[[torch.Tensor], torch.Tensor]  # input -> target-layer activations
    head: Callable[[torch.Tensor], torch.Tensor]  # target-layer activations -> logits
    onnx_path: Path
    layer: str  # the layer as onnxcam.Explainer names it
    inputs: np.ndarray  # (N, 3, 224, 224) float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the torch model."""
        return self.head(self.features(x))


def emit(bench: str, **fields: Any) -> None:
    """Print one JSON line."""
    print(json.dumps({"bench": bench, **fields}), flush=True)


class OtherLoad:
    """CPU seconds that other processes used since creation: the noise in our timings (Linux)."""

    def __init__(self) -> None:
        self.start = self._busy_and_own()

    @staticmethod
    def _busy_and_own() -> tuple[float, float] | None:
        stat = Path("/proc/stat")
        if not stat.exists():
            return None
        user, nice, system, _idle, _iowait, irq, softirq = stat.read_text().split()[1:8]
        busy = sum(int(v) for v in (user, nice, system, irq, softirq)) / os.sysconf("SC_CLK_TCK")
        own = resource.getrusage(resource.RUSAGE_SELF)
        return busy, own.ru_utime + own.ru_stime

    def seconds(self) -> float | None:
        """Other processes' CPU seconds so far, or None where /proc/stat is missing."""
        now = self._busy_and_own()
        if now is None or self.start is None:
            return None
        return round(max(0.0, (now[0] - self.start[0]) - (now[1] - self.start[1])), 1)


# Models --------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and an identity or projected shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 layout: stem, four stages of two basic blocks (64-128-256-512), GAP, linear."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        self.layer1 = nn.Sequential(BasicBlock(64, 64, 1), BasicBlock(64, 64, 1))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128, 1))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256, 1))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512, 1))
        self.fc = nn.Linear(512, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) -> layer4 activations (N, 512, 7, 7)."""
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def head(self, a: torch.Tensor) -> torch.Tensor:
        """layer4 activations -> logits (N, classes)."""
        return self.fc(a.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def random_resnet18(seed: int = 0) -> ResNet18:
    """ResNet18 with random weights and random BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = ResNet18()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model.eval()


def load_resnet18(directory: Path, settings: Settings) -> Model:
    """The random ResNet-18, exported to `directory` with layer4 exposed; random inputs."""
    module = random_resnet18()
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        example = torch.zeros(2, 3, *SIZE)
        result = from_torch(module, example, directory / "resnet18.onnx", ["layer4"])
    emit(
        "export",
        model="resnet18",
        seconds=round(time.perf_counter() - started, 2),
        max_abs_diff=result.max_abs_diff,
    )
    x = np.random.default_rng(0).standard_normal((settings.images, 3, *SIZE), np.float32)
    return Model("resnet18", module.features, module.head, result.path, "layer4", x)


def cat_inputs(n: int) -> np.ndarray:
    """n inputs alternating scikit-image's cat photo and its mirror image, as EfficientNet wants."""
    picture = np.asarray(fit_image(Image.fromarray(demo_photo()), SIZE, 0.875))
    mean, std = np.asarray(DEMO_PREPROCESS.mean), np.asarray(DEMO_PREPROCESS.std)
    x = ((picture / 255.0 - mean) / std).transpose(2, 0, 1)
    return np.stack([x if i % 2 == 0 else x[:, :, ::-1] for i in range(n)]).astype(np.float32)


def load_efficientnet(settings: Settings) -> Model:
    """The pretrained EfficientNet-Lite0 and its cached ONNX export (layer `auto`)."""
    with contextlib.redirect_stdout(sys.stderr):
        module = efficientnet_lite0()
        path = efficientnet_lite0_onnx()

    def head(a: torch.Tensor) -> torch.Tensor:
        return module._fc(module._avg_pooling(a).flatten(1))

    x = cat_inputs(settings.images)
    return Model("efficientnet-lite0", module.extract_features, head, path, "auto", x)


# Measurements --------------------------------------------------------------------------------


def best_of(run: Callable[[], object], rounds: int = 2) -> float:
    """Seconds of the fastest of `rounds` calls of run."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of fn takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def passes(forward: Forward, pool: np.ndarray, n: int, batch: int) -> None:
    """n forward passes in batches of `batch`, the last one shorter, cycling through a pool of
    distinct inputs: like Score-CAM's masked inputs, they are not all in cache."""
    for start in range(0, n, batch):
        first = start % len(pool)
        forward(pool[first : first + min(batch, n - start, len(pool) - first)])


def input_pool(seed: int = 1) -> np.ndarray:
    """POOL_IMAGES distinct random inputs, cycled through by the reference passes."""
    return np.random.default_rng(seed).standard_normal((POOL_IMAGES, 3, *SIZE), np.float32)


def ort_forward(explainer: onnxcam.Explainer) -> Forward:
    """One ORT run of the explainer's own session, logits only."""
    return lambda x: explainer.runner.run_batch(x, [explainer.logits_name])


def torch_forward(model: Model) -> Forward:
    """One torch forward pass, logits only."""

    def forward(x: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return model.forward(torch.from_numpy(x))

    return forward


def throughput(
    runtime: str, name: str, forward: Forward, rounds: int, images: int
) -> tuple[int, float]:
    """Images/s per batch size; returns the batch size with the best median and its rate.

    Each round passes `images` images through every batch size in turn, so that load from
    other processes falls on all batch sizes alike.
    """
    pool = input_pool()
    for batch in BATCH_SIZES:
        forward(pool[:batch])
    rates: dict[int, list[float]] = {b: [] for b in BATCH_SIZES}
    for _ in range(rounds):
        for batch in BATCH_SIZES:
            rates[batch].append(images / timed(partial(passes, forward, pool, images, batch)))
    for batch, values in rates.items():
        emit(
            f"{runtime}_throughput",
            model=name,
            batch_size=batch,
            rounds=len(values),
            images_per_round=images,
            images_per_s=round(statistics.median(values), 2),
            images_per_s_max=round(max(values), 2),
        )
    batch = max(rates, key=lambda b: statistics.median(rates[b]))
    best = statistics.median(rates[batch])
    emit(f"{runtime}_best", model=name, batch_size=batch, images_per_s=round(best, 2))
    return batch, best


def warm_up_kernels(explainer: onnxcam.Explainer, x: np.ndarray) -> None:
    """Compile (or load from Numba's cache) the kernels that explain calls, with its types."""
    _, activations = explainer.forward(x[:1])
    k = activations.shape[1]
    item = np.zeros(1, np.int64)
    masked_inputs(x[:1], activations, item, item, np.empty((1, *x.shape[1:]), np.float32))
    raw = weighted_sum(activations, np.full((1, k), 1.0 / k))
    resize_normalize(raw, SIZE)


def torch_score_cam(model: Model, x: torch.Tensor, batch_size: int):
    """Score-CAM, paper profile, in torch (tests/references.py): maps, weights, targets, passes.
    Constant channels get weight 0 and no forward pass, as in onnxcam."""
    with torch.inference_mode():
        activations = model.features(x)
    return references.score_cam(model.forward, activations, x, batch_size)


def bench_model(model: Model, settings: Settings) -> None:
    """Throughput sweeps, then Score-CAM through onnxcam and through torch, on one model.

    Each Score-CAM round runs back to back: onnxcam at ORT's best batch size; ORT alone on as
    many random inputs as onnxcam made masked passes (the paired reference); torch at the same
    batch size; and torch at its own best batch size where that differs. The best round counts.
    """
    explainer = onnxcam.Explainer(model.onnx_path, layer=model.layer, progress=False)
    batch, images_per_s = throughput(
        "ort", model.name, ort_forward(explainer), settings.sweep_rounds, ORT_ROUND_IMAGES
    )
    torch_best, _ = throughput(
        "torch", model.name, torch_forward(model), settings.torch_rounds, TORCH_ROUND_IMAGES
    )
    explainer.batch_size = batch
    warm_up_kernels(explainer, model.inputs)
    x = torch.from_numpy(model.inputs)
    pool = input_pool(seed=3)
    torch_batches = list(dict.fromkeys([batch, torch_best]))
    chosen_by = {"ort_best": batch, "torch_best": torch_best}
    outputs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, int]] = {}

    load = OtherLoad()
    rounds: list[list[float]] = []
    for _ in range(settings.scorecam_rounds):
        started = time.perf_counter()
        result = explainer.explain(model.inputs, method="score-cam")
        times = [time.perf_counter() - started]
        n_passes = result.metadata["passes_run"]
        times.append(timed(partial(passes, ort_forward(explainer), pool, n_passes, batch)))
        for torch_batch in torch_batches:
            started = time.perf_counter()
            outputs[torch_batch] = torch_score_cam(model, x, torch_batch)
            times.append(time.perf_counter() - started)
        rounds.append(times)
    ours_s, reference_s, *theirs = (min(column) for column in zip(*rounds, strict=True))
    other_cpu_s = load.seconds()

    meta = result.metadata
    n = len(model.inputs)
    by_passes = ours_s / (n_passes / images_per_s)
    emit(
        "scorecam_onnxcam",
        model=model.name,
        layer=explainer.layer,
        images=n,
        batch_size=batch,
        rounds=len(rounds),
        seconds=round(ours_s, 3),
        seconds_per_image=round(ours_s / n, 3),
        passes_run=n_passes,
        passes_skipped=meta["passes_skipped"],
        channels=meta["channels"],
        ort_images_per_s=round(images_per_s, 2),
        ratio_vs_passes_run=round(by_passes, 4),
        ratio_vs_channels=round(ours_s / (n * meta["channels"] / images_per_s), 4),
        ratio_target=RATIO_TARGET,
        ratio_met=by_passes <= RATIO_TARGET,
        paired_reference_seconds=round(reference_s, 3),
        ratio_vs_paired_reference=round(ours_s / reference_s, 4),
        other_processes_cpu_s=other_cpu_s,
    )
    for torch_batch, theirs_s in zip(torch_batches, theirs, strict=True):
        maps, weights, targets, torch_passes = outputs[torch_batch]
        speedup = theirs_s / ours_s
        emit(
            "scorecam_torch",
            model=model.name,
            images=n,
            batch_size=torch_batch,
            batch_size_is=[k for k, size in chosen_by.items() if size == torch_batch],
            rounds=len(rounds),
            seconds=round(theirs_s, 3),
            seconds_per_image=round(theirs_s / n, 3),
            passes_run=torch_passes,
            speedup_onnxcam=round(speedup, 3),
            speedup_target=SPEEDUP_TARGET,
            speedup_met=speedup >= SPEEDUP_TARGET,
            same_targets=bool(np.array_equal(targets, result.targets)),
            max_abs_diff_maps=float(np.abs(maps - result.maps).max()),
            max_abs_diff_weights=float(np.abs(weights - result.weights).max()),
        )


def bench_resize(settings: Settings) -> None:
    """resize_normalize of 512 maps 7x7 -> 224x224 against torch's interpolate + min-max."""
    maps = np.random.default_rng(2).standard_normal((512, 7, 7), np.float32)
    tensor = torch.from_numpy(maps)

    def ours() -> tuple[np.ndarray, np.ndarray]:
        return resize_normalize(maps, SIZE)

    def theirs() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            flat = references.upsample(tensor, SIZE).flatten(1)
            constant = flat.amax(dim=1) <= flat.amin(dim=1)
            return references.minmax(flat).view(-1, *SIZE), constant

    diff = float(np.abs(ours()[0] - theirs()[0].numpy()).max())  # also the warm-up
    times = [(timed(ours), timed(theirs)) for _ in range(settings.kernel_runs)]
    ours_s, theirs_s = (statistics.median(column) for column in zip(*times, strict=True))
    emit(
        "kernel_resize_normalize",
        maps=list(maps.shape),
        size=list(SIZE),
        runs=len(times),
        onnxcam_ms=round(ours_s * 1e3, 3),
        torch_ms=round(theirs_s * 1e3, 3),
        speedup=round(theirs_s / ours_s, 3),
        max_abs_diff=diff,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks named on the command line; JSON lines on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repetitions")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated, from: {', '.join(MODELS)}"
    )
    args = parser.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    settings = QUICK if args.quick else FULL
    torch.set_num_threads(TORCH_THREADS)
    started = time.perf_counter()
    load = OtherLoad()
    emit(
        "env",
        cpus=os.cpu_count(),
        machine=platform.machine(),
        python=platform.python_version(),
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        onnxruntime=onnxruntime.__version__,
        ort_threads="default",
        numba=numba.__version__,
        numba_threads=numba.get_num_threads(),
        onnxcam=onnxcam.__version__,
        quick=args.quick,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            if name == "resnet18":
                bench_model(load_resnet18(Path(tmp), settings), settings)
            else:
                bench_model(load_efficientnet(settings), settings)
    bench_resize(settings)
    emit(
        "process",
        seconds=round(time.perf_counter() - started, 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        other_processes_cpu_s=load.seconds(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
