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


def test_resize_modes_and_free_axes(tmp_path):
    from onnxcam.io.images import target_size

    path = tmp_path / "wide.png"
    pixels = np.zeros((20, 80, 3), np.uint8)
    pixels[:, :40] = 255  # left half white
    Image.fromarray(pixels).save(path)
    imagenet = PRESETS["imagenet"]
    _, own = load_image(path, (None, None), imagenet)
    np.testing.assert_array_equal(own, pixels)  # both axes free: the image as it is
    assert target_size(80, 20, (None, 40)) == (10, 40) and target_size(80, 20, (40, None)) == (
        40,
        160,
    )
    _, fit = load_image(path, (40, 40), imagenet, resize="fit")
    mean_colour = [round(255 * m) for m in imagenet.mean]
    assert (fit[:14] == mean_colour).all() and (fit[-14:] == mean_colour).all()  # letterbox bars
    assert fit[20, 5].tolist() == [255, 255, 255] and fit[20, 35].tolist() == [0, 0, 0]
    _, stretched = load_image(path, (40, 40), imagenet, resize="stretch")
    assert stretched[0, 5].tolist() == [255, 255, 255] and stretched[39, 35].tolist() == [0, 0, 0]
    _, cropped = load_image(path, (40, 40), imagenet, resize="crop")
    # crop: the centre 35 source columns (40 / 0.875 of the 20 rows' scale), no bars
    assert (cropped[:, :17] == 255).all() and (cropped[:, 23:] == 0).all()


def test_crop_is_the_default_only_where_the_model_records_cropping():
    from onnxcam.io import InputFormat

    shape = ("N", 3, 224, 224)
    assert (
        InputFormat.for_model(shape, False, PRESETS["imagenet"], crop_recorded=True).resize
        == "crop"
    )
    assert InputFormat.for_model(shape, False, PRESETS["imagenet"]).resize == "fit"
    stretched = InputFormat.for_model(shape, False, PRESETS["imagenet"], resize="stretch")
    assert stretched.resize == "stretch"
    free = InputFormat.for_model(("N", 3, "h", "w"), False, PRESETS["imagenet"])
    assert free.size == (None, None)
    assert free.size_note((40, 150)) == (
        "input size 40x150: the image's own (the model leaves H and W free; --size HxW imposes one)"
    )
    given = InputFormat.for_model(("N", 3, "h", "w"), False, PRESETS["imagenet"], "48x192", "fit")
    assert given.size == (48, 192)
    assert (
        given.size_note((48, 192))
        == "input size 48x192: from --size (images reach it by --resize fit)"
    )


def test_a_size_other_than_the_models_fixed_one_is_refused_before_any_work():
    from onnxcam.io.inputs import input_size

    with pytest.raises(InputError, match=r"--size 300x300: the model fixes its input at 224x224"):
        input_size("300x300", ("N", 3, 224, 224))
    assert input_size("224x224", ("N", 3, 224, 224)) == (224, 224)
    assert input_size("300x200", ("N", 3, "h", "w")) == (300, 200)  # free axes take it
    with pytest.raises(InputError, match=r"fixes its input at 48x\?"):
        input_size("32x100", ("N", 3, 48, "w"))
