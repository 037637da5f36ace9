"""Image files: decoded with Pillow, resized and centre-cropped, then preprocessed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from onnxcam.errors import InputError
from onnxcam.io.preprocess import Preprocess


def fit_image(image: Image.Image, size: tuple[int, int], crop_fraction: float) -> Image.Image:
    """Resize so the image covers size / crop_fraction, then take the centre (H, W) crop."""
    height, width = size
    scale = max(height / image.height, width / image.width) / crop_fraction
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.BILINEAR,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_image(
    path: str | Path, size: tuple[int, int], preprocess: Preprocess, channels: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W) float32 model input and the (H, W, 3) uint8 picture it was made from."""
    if channels not in (1, 3):
        raise InputError(f"the model takes {channels} input channels: give .npy arrays, not images")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened if opened.mode == "RGB" else opened.convert("RGB")
            picture = np.asarray(fit_image(image, size, preprocess.crop_fraction))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise InputError(f"cannot read image {path}: {err}") from err
    # Channels first before the arithmetic, each channel's constants as scalars: the same
    # float32 operations as on (H, W, C) pixels, on contiguous planes.
    pixels = picture.transpose(2, 0, 1).astype(np.float32, order="C")
    pixels /= 255.0
    if channels == 1:
        pixels = pixels.mean(axis=0, keepdims=True)
    mean = np.asarray(preprocess.mean[:channels], np.float32)[:, None, None]
    std = np.asarray(preprocess.std[:channels], np.float32)[:, None, None]
    pixels -= mean
    pixels /= std
    return pixels, picture
