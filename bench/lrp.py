"""LRP through ONNX relevance graphs: seconds per image against one forward pass, same run.

Prints one JSON line per measurement (random ResNet-18 at 224 px, with BatchNorm folded and
residual Adds split proportionally): `build` (seconds to fold, build the relevance graph and
open its session) and `lrp` (seconds per image of `explain(method="lrp")` for a composite,
the seconds per image of a plain forward pass of the same model, and their ratio).

    python bench/lrp.py [--images 4] [--batch 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scorecam import QUICK, emit, load_resnet18

import onnxcam

COMPOSITES = ("epsilon-plus", "epsilon-gamma-box", "sr-official")


def per_image(run, n: int, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = load_resnet18(Path(folder), QUICK)
        x = model.inputs[:1].repeat(args.images, axis=0)
        explainer = onnxcam.Explainer(model.onnx_path, batch_size=args.batch, progress=False)
        names = [explainer.logits_name]
        forward = per_image(lambda: explainer.runner.run(x, names, args.batch), len(x))
        for composite in COMPOSITES:
            started = time.perf_counter()
            explainer.explain(x[:1], method="lrp", composite=composite)
            emit("build", composite=composite, seconds=round(time.perf_counter() - started, 2))
            lrp = per_image(
                lambda c=composite: explainer.explain(x, method="lrp", composite=c), len(x)
            )
            emit(
                "lrp",
                model=model.name,
                composite=composite,
                images=len(x),
                batch=args.batch,
                lrp_s_per_image=round(lrp, 4),
                forward_s_per_image=round(forward, 4),
                ratio=round(lrp / forward, 2),
            )


if __name__ == "__main__":
    main()
