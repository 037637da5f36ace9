"""`make demo`: Score-CAM of EfficientNet-Lite0 on skimage's cat, then the GunPoint demo."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from onnxcam.demo.efficientnet import (
    DEMO_PREPROCESS,
    demo_photo,
    efficientnet_lite0_onnx,
)
from onnxcam.demo.gunpoint import run_timeseries_demo
from onnxcam.io import fit_image


def run_demo(out: Path, provider: str = "cpu", progress: bool = True) -> int:
    from onnxcam.api import Explainer

    started = time.perf_counter()
    model_path = efficientnet_lite0_onnx()
    seconds = time.perf_counter() - started
    print(f"model: EfficientNet-Lite0 (ImageNet) at {model_path} ({seconds:.1f} s)")
    picture = np.asarray(fit_image(Image.fromarray(demo_photo()), (224, 224), 0.875))
    mean, std = np.asarray(DEMO_PREPROCESS.mean), np.asarray(DEMO_PREPROCESS.std)
    x = ((picture / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    explainer = Explainer(model_path, layer="auto", provider=provider, progress=progress)
    result = explainer.explain(x, method="score-cam")
    manifest = result.save(out, images=[picture], names=["chelsea"])
    meta = result.metadata
    probability = result.probabilities[0]
    print(f"input: skimage.data.chelsea(), 224x224; predicted: {result.class_text(0)}, ", end="")
    print(f"p={probability:.3f}")
    layer = next(info for info in explainer.layers() if info.name == explainer.layer)
    print(f"layer: {layer.name} [{layer.scope}] {tuple(meta['layer_shape'])} (auto), ", end="")
    print(f"provider {explainer.provider}")
    constant = meta["passes_skipped"] - meta["passes_shared"]
    print(
        f"score-cam: {meta['seconds']:.2f} s, {meta['passes_run']} masked passes "
        f"({constant} constant channels skipped, {meta['passes_shared']} shared a pass)"
    )
    print(f"wrote {out}/chelsea.png, {out}/chelsea.npy, {manifest}")
    return run_timeseries_demo(out / "gunpoint", provider, progress)
