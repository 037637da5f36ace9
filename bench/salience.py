"""Salience-CAM against Score-CAM on EfficientNet-Lite0 and the demo cat: seconds per image of
each in the same run, Salience-CAM's backward passes, and what one forward pass per input under
a batch of seeds saves (the same call with one forward pass per seed, forced). The MAC floor is
what Salience-CAM must cost against Score-CAM however fast ORT ran a backward pass: its passes
times one seed's backward MACs over Score-CAM's passes times one forward row's MACs.

    cd bench && PYTHONPATH=../src python salience.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np
from macs import macs
from PIL import Image
from scorecam import emit

import onnxcam
from onnxcam.demo import DEMO_PREPROCESS, demo_photo, efficientnet_lite0_onnx
from onnxcam.engine import backward, graph
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


def mac_floor(explainer: onnxcam.Explainer, salience_passes: int, score_passes: int) -> dict:
    """MACs of one forward row (input to scores) and of one seed's backward sweep (the graph
    salience-cam runs, less its forward part), and the floor they set on the time ratio."""
    views = explainer.views
    source = graph.model_input(views.model).name
    size = {source: (1, *cat().shape[1:])}
    forward = macs(views.model, size, [views.logits])
    sweep = backward.build(views.model, backward.GRADIENT, [views.layer], [source], [])
    seed = {backward.seed_name(views.layer): (1, *explainer.forward(cat())[1].shape[1:])}
    forward_part = frozenset(name for node in views.model.graph.node for name in node.output)
    per_seed = macs(sweep, {**size, **seed}, [backward.grad_name(source)], forward_part)
    return {
        "forward_mmacs": round(forward / 1e6, 1),
        "backward_mmacs_per_seed": round(per_seed / 1e6, 1),
        "mac_floor_over_score_cam": round(salience_passes * per_seed / (score_passes * forward), 2),
    }


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
    key = ((views.layer,), (explainer.input.name,), x.shape[1:])
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
        **mac_floor(  # less the one pass per input for the Grad-CAM weights, through the tail
            explainer, salience.metadata["passes_run"] - len(x), score.metadata["passes_run"]
        ),
    )


if __name__ == "__main__":
    main()
