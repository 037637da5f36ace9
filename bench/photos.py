"""skimage photos as EfficientNet-Lite0 takes them (224 px, the demo model's preprocessing), for
the benches that need real inputs rather than noise."""

from __future__ import annotations

import numpy as np
from PIL import Image

from onnxcam.demo import DEMO_PREPROCESS
from onnxcam.io.images import fit_image

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat", "immunohistochemistry")


def photo_inputs(names=PHOTOS) -> np.ndarray:
    """(len(names), 3, 224, 224) float32 inputs of the named skimage photos."""
    from skimage import data

    mean, std = np.asarray(DEMO_PREPROCESS.mean), np.asarray(DEMO_PREPROCESS.std)
    inputs = []
    for name in names:
        picture = Image.fromarray(getattr(data, name)())
        pixels = np.asarray(fit_image(picture, (224, 224), DEMO_PREPROCESS.crop_fraction))
        inputs.append(((pixels / 255.0 - mean) / std).transpose(2, 0, 1))
    return np.stack(inputs).astype(np.float32)
