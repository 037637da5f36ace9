"""Image inputs: load_image equals the preprocessing formula on (H, W, C) pixels, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from onnxcam.errors import InputError
from onnxcam.io import PRESETS, fit_image, load_image


def reference(path, size, preprocess, channels):
    """(x / 255 - mean) / std per pixel in float32, channels last, then moved first."""
    with Image.open(path) as opened:
        picture = np.asarray(fit_image(opened.convert("RGB"), size, preprocess.crop_fraction))
    pixels = picture.astype(np.float32) / 255.0
    if channels == 1:
        pixels = pixels.mean(axis=2, keepdims=True)
    mean = np.asarray(preprocess.mean[:channels], np.float32)
    std = np.asarray(preprocess.std[:channels], np.float32)
    return ((pixels - mean) / std).transpose(2, 0, 1), picture


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
@pytest.mark.parametrize("preset", ["imagenet", "inception"])
@pytest.mark.parametrize("channels", [3, 1])
def test_load_image_equals_the_formula(tmp_path, mode, preset, channels):
    rng = np.random.default_rng(0)
    path = tmp_path / f"x.{'jpg' if mode in ('RGB', 'L') else 'png'}"
    Image.fromarray(rng.integers(0, 256, (61, 90, 3), dtype=np.uint8)).convert(mode).save(path)
    x, picture = load_image(path, (24, 32), PRESETS[preset], channels)
    want_x, want_picture = reference(path, (24, 32), PRESETS[preset], channels)
    assert x.shape == (channels, 24, 32) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.array_equal(x, want_x)
    assert np.array_equal(picture, want_picture)


def test_load_image_errors(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(InputError, match="takes 2 input channels"):
        load_image(path, (8, 8), PRESETS["imagenet"], 2)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(InputError, match="cannot read image"):
        load_image(tmp_path / "bad.jpg", (8, 8), PRESETS["imagenet"])
