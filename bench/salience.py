"""Salience-CAM against Score-CAM on EfficientNet-Lite0 and the demo cat: seconds per image of
each in the same run, Salience-CAM's backward passes, and what one forward pass per input under
a batch of seeds saves (the same call with one forward pass per seed, forced).

    cd bench && PYTHONPATH=../src python salience.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np
from PIL import Image
from scorecam import emit

import onnxcam
from onnxcam.demo import DEMO_PREPROCESS, demo_photo, efficientnet_lite0_onnx
from onnxcam.io import fit_image


def cat() -> np.ndarray:
    """The demo photo as the demo feeds it: (1, 3, 224, 224)."""
    picture = np.asarray(fit_image(Image.fromarray(demo_photo()), (224, 224), 0.875))
    mean, std = np.asarray(DEMO_PREPROCESS.mean), np.asarray(DEMO_PREPROCESS.std)
    return ((picture / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)


def best(call, rounds: int) -> tuple[float, onnxcam.Explanation]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):
        explainer = onnxcam.Explainer(efficientnet_lite0_onnx(), progress=False)
    x = cat()
    score_s, score = best(lambda: explainer.explain(x, "score-cam"), args.rounds)
    salience_s, salience = best(lambda: explainer.explain(x, "salience-cam"), args.rounds)
    views = explainer.views
    key = ((views.layer,), (explainer.input.name,))
    shared = views._shares_forward[key]
    views._shares_forward[key] = False  # the same call, one forward pass per seed
    per_seed_s, per_seed = best(lambda: explainer.explain(x, "salience-cam"), args.rounds)
    views._shares_forward[key] = shared
    emit(
        "salience",
        score_cam_s=round(score_s, 3),
        score_cam_passes=score.metadata["passes_run"],
        salience_s=round(salience_s, 3),
        salience_passes=salience.metadata["passes_run"],
        salience_skipped=salience.metadata["passes_skipped"],
        shared_forward=bool(shared),
        salience_over_score_cam=round(salience_s / score_s, 2),
        one_forward_per_seed_s=round(per_seed_s, 3),
        shared_speedup=round(per_seed_s / salience_s, 2),
        max_abs_diff=float(np.abs(salience.maps - per_seed.maps).max()),
    )


if __name__ == "__main__":
    main()
