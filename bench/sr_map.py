"""SR map: context-aware saliency seconds at 250 px, and sr-map seconds per image against one
forward pass, each against a reference measured in the same run.

- `patch_search`: the scale-100 % search of a 250 px photo (P queries, Q candidates from scales
  1, 1/2, 1/4) by the Numba kernel against a NumPy version of the same search (BLAS matrix
  products for the colour distances, np.partition for the K nearest, 512 queries per block).
- `saliency`: context_saliency on package photos (larger side brought to 250 px), seconds.
- `sr_map`: EfficientNet-Lite0 (ImageNet weights) on 4 package photos at 224 px, batch 4:
  seconds per image of a forward pass, of `explain(method="lrp")` and of
  `explain(method="sr-map")`, and the ratios to the forward pass.
Prints one JSON line per measurement.

    python bench/sr_map.py [--rounds 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from scorecam import OtherLoad, best_of, emit

import onnxcam
from onnxcam.demo import DEMO_PREPROCESS, efficientnet_lite0_onnx
from onnxcam.engine import context_saliency as cas
from onnxcam.io import fit_image
from onnxcam.kernels.patch_search import knn_mean_distance


def photos() -> dict[str, np.ndarray]:
    from skimage import data

    return {name: getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")}


def model_inputs(images) -> np.ndarray:
    """(N, 3, 224, 224) EfficientNet-Lite0 inputs from (H, W, 3) uint8 photos, as the demo."""
    mean, std = np.asarray(DEMO_PREPROCESS.mean), np.asarray(DEMO_PREPROCESS.std)
    pictures = [np.asarray(fit_image(Image.fromarray(im), (224, 224), 0.875)) for im in images]
    x = [((p / 255.0 - mean) / std).transpose(2, 0, 1) for p in pictures]
    return np.stack(x).astype(np.float32)


def numpy_search(queries, query_pos, candidates, cand_pos, k, c, block=512):
    """The kernel's search in NumPy: colour distances from matrix products, K nearest by
    partition; query i is candidate i."""
    inv_sqrt_d = 1 / np.sqrt(queries.shape[1])
    cand_sq = (candidates**2).sum(axis=1)
    out = np.empty(len(queries), np.float32)
    for lo in range(0, len(queries), block):
        q = queries[lo : lo + block]
        colour_sq = (q**2).sum(axis=1)[:, None] + cand_sq[None] - 2 * q @ candidates.T
        colour = np.sqrt(np.maximum(colour_sq, 0)) * inv_sqrt_d
        offset = query_pos[lo : lo + block, None, :] - cand_pos[None]
        d = colour / (1 + c * np.sqrt((offset**2).sum(axis=-1)))
        d[np.arange(len(q)), lo + np.arange(len(q))] = np.inf
        out[lo : lo + block] = np.partition(d, k, axis=1)[:, :k].mean(axis=1)
    return out


def search_sets(image: np.ndarray):
    """Queries and candidates of the scale-100 % search, as context_saliency builds them."""
    opts = cas.ContextSaliency()
    feats = cas.features(image.transpose(2, 0, 1) / 255.0, "lab")
    size = cas.work_size(feats.shape[1:], opts)
    work = cas.rescale(feats, size)
    sets = [cas.patches(cas.rescale(work, cas.scaled_size(size, s)), 7, 3) for s in (1, 0.5, 0.25)]
    candidates = np.concatenate([vectors for vectors, _, _ in sets])
    cand_pos = np.concatenate([pos for _, pos, _ in sets])
    return sets[0][0], sets[0][1], candidates, cand_pos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = OtherLoad()
    images = photos()
    queries, query_pos, candidates, cand_pos = search_sets(images["astronaut"])
    kernel = numpy_result = None

    def run_kernel():
        nonlocal kernel
        kernel = knn_mean_distance(queries, query_pos, candidates, cand_pos, 64, 3.0, 0)

    def run_numpy():
        nonlocal numpy_result
        numpy_result = numpy_search(queries, query_pos, candidates, cand_pos, 64, 3.0)

    run_kernel()  # compile
    kernel_s, numpy_s = best_of(run_kernel, args.rounds), best_of(run_numpy, args.rounds)
    emit(
        "patch_search",
        image="astronaut 250x250",
        queries=len(queries),
        candidates=len(candidates),
        features=queries.shape[1],
        numba_s=round(kernel_s, 3),
        numpy_blas_s=round(numpy_s, 3),
        speedup=round(numpy_s / kernel_s, 2),
        max_difference=float(np.abs(kernel - numpy_result).max()),
    )
    for name, image in images.items():
        x = image.transpose(2, 0, 1) / 255.0
        seconds = best_of(lambda x=x: cas.context_saliency(x), args.rounds)
        _, info = cas.context_saliency(x)
        emit("saliency", image=name, size=list(image.shape[:2]), **info, seconds=round(seconds, 3))

    model = efficientnet_lite0_onnx()
    x = model_inputs(images.values())
    explainer = onnxcam.Explainer(model, batch_size=4, progress=False)
    explainer.explain(x[:1], method="sr-map")  # builds the relevance graph
    names = [explainer.logits_name]
    forward = best_of(lambda: explainer.runner.run(x, names, 4), args.rounds) / len(x)
    lrp = best_of(lambda: explainer.explain(x, method="lrp"), args.rounds) / len(x)
    sr_map = best_of(lambda: explainer.explain(x, method="sr-map"), args.rounds) / len(x)
    emit(
        "sr_map",
        model="efficientnet-lite0",
        images=len(x),
        forward_s_per_image=round(forward, 4),
        lrp_s_per_image=round(lrp, 4),
        sr_map_s_per_image=round(sr_map, 4),
        lrp_over_forward=round(lrp / forward, 2),
        sr_map_over_forward=round(sr_map / forward, 2),
        other_cpu_s=load.seconds(),
    )


if __name__ == "__main__":
    main()
