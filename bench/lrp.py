"""LRP per image: onnxcam's relevance graphs against the torch LRP of zennit's rules (the tests'
reference, tests/zennit_reference.py: autograd with one custom backward per layer, as zennit
computes) on the same CPU in the same run, and against one plain forward pass.

Models: EfficientNet-Lite0 with ImageNet weights, and ResNet-18 (its real widths, random He
weights and BatchNorm statistics), both at 224 px. Prints one JSON line per model and
composite: seconds per image of `explain(method="lrp")` (its forward pass for the class scores,
then the relevance graph), of the reference (the same batch), of a forward pass, the ratios,
and the first call's build time (fold, graph, session).

    python bench/lrp.py [--images 4] [--batch 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import zennit_reference as zr  # the tests' torch LRP of zennit's rules
from scorecam import emit
from toy_models import ResNet18Shape, he_init, randomise_batchnorm

import onnxcam
from onnxcam.demo import DEMO_PREPROCESS, demo_photo, efficientnet_lite0
from onnxcam.exporters import from_torch
from onnxcam.io import fit_image

COMPOSITES = ("epsilon-plus", "epsilon-gamma-box", "epsilon-alpha2-beta1")
BOUNDS = (-1.0, 1.0)  # pixels 0 and 1 under EfficientNet's (x - 0.5) / 0.5


def best_per_image(run, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / n


def photo_batch(n: int) -> np.ndarray:
    """The demo photo at 224 px, EfficientNet-Lite0's preprocessing, n times."""
    photo = Image.fromarray(demo_photo())
    picture = np.asarray(fit_image(photo, (224, 224), DEMO_PREPROCESS.crop_fraction))
    x = (picture.astype(np.float32) / 255 - 0.5) / 0.5
    return np.repeat(x.transpose(2, 0, 1)[None], n, axis=0)


def models():
    """(name, torch model, its zennit canonizer)."""
    yield "efficientnet-lite0", efficientnet_lite0(), zr.canonize_efficientnet
    resnet = ResNet18Shape(widths=(64, 128, 256, 512), classes=1000)
    yield "resnet18", randomise_batchnorm(he_init(resnet)).eval(), zr.canonize_sequential


def bench_model(name: str, model, canonize, x: np.ndarray, folder: Path, args) -> None:
    path = folder / f"{name}.onnx"
    from_torch(model, torch.from_numpy(x[:2]), path)
    explainer = onnxcam.Explainer(path, batch_size=args.batch, progress=False)
    canonical = canonize(copy.deepcopy(model))
    with torch.no_grad():
        targets = canonical(torch.from_numpy(x)).argmax(1)
    logits = [explainer.logits_name]
    forward = best_per_image(
        lambda: explainer.runner.run(x, logits, args.batch), len(x), args.rounds
    )
    for composite in COMPOSITES:
        options = {"composite": composite, "low": BOUNDS[0], "high": BOUNDS[1]}
        started = time.perf_counter()
        explainer.explain(x[:1], method="lrp", **options)
        build = time.perf_counter() - started
        ours = best_per_image(
            lambda o=options: explainer.explain(x, method="lrp", **o), len(x), args.rounds
        )
        rules = zr.composite(composite, low=BOUNDS[0], high=BOUNDS[1])

        def reference(rules=rules):
            for i in range(0, len(x), args.batch):
                batch = torch.from_numpy(x[i : i + args.batch])
                zr.input_relevance(canonical, rules, batch, targets[i : i + args.batch])

        theirs = best_per_image(reference, len(x), args.rounds)
        emit(
            "lrp",
            model=name,
            composite=composite,
            images=len(x),
            batch=args.batch,
            torch_threads=torch.get_num_threads(),
            onnxcam_s_per_image=round(ours, 4),
            reference_s_per_image=round(theirs, 4),
            speedup=round(theirs / ours, 2),
            forward_s_per_image=round(forward, 4),
            lrp_over_forward=round(ours / forward, 2),
            build_s=round(build, 2),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    x = photo_batch(args.images)
    with tempfile.TemporaryDirectory() as folder:
        for name, model, canonize in models():
            bench_model(name, model, canonize, x, Path(folder), args)


if __name__ == "__main__":
    main()
