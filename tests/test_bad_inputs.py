"""Input files that are broken or hostile: one clear InputError each (an error row in a
dataset run), never a traceback, a silent wrong picture, a collision of names or an endless
walk."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from onnxcam.dataset.inputs import dataset_items
from onnxcam.engine.methods.occlusion import window_starts
from onnxcam.errors import InputError
from onnxcam.io import (
    PRESETS,
    InputFormat,
    Preprocess,
    load_array,
    load_image,
    load_inputs,
    unique_names,
)
from onnxcam.io.images import MAX_INPUT_PIXELS, fit_image
from onnxcam.io.listing import expand


def test_a_thin_strip_is_cropped_before_it_is_resized(tmp_path):
    path = tmp_path / "strip.png"
    Image.new("RGB", (100_000, 1), (200, 10, 10)).save(path)
    assert path.stat().st_size < 2000
    tracemalloc.start()
    _x, picture = load_image(path, (224, 224), PRESETS["imagenet"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20  # not the gigabytes a resize of the whole strip would take
    assert picture.shape == (224, 224, 3) and (picture == (200, 10, 10)).all()


def test_crop_first_equals_resize_then_crop_up_to_rounding():
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(20, 400, 2))
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        height, width = (int(v) for v in rng.integers(8, 200, 2))
        scale = max(height / h, width / w) / 0.875
        big = image.resize(
            (max(width, round(w * scale)), max(height, round(h * scale))), Image.BILINEAR
        )
        left, top = (big.width - width) // 2, (big.height - height) // 2
        want = np.asarray(big.crop((left, top, left + width, top + height)), np.int16)
        got = np.asarray(fit_image(image, (height, width), 0.875), np.int16)
        assert np.abs(got - want).max() <= 2  # 8-bit rounding between Pillow's two passes


def test_too_many_pixels_are_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    side = int(np.sqrt(MAX_INPUT_PIXELS)) + 16
    Image.new("L", (side, side)).save(path)
    with pytest.raises(InputError, match=r"megapixels\); expected at most 64 megapixels"):
        load_image(path, (8, 8), PRESETS["imagenet"])


def test_sixteen_bit_images_are_scaled_by_their_depth(tmp_path):
    path = tmp_path / "ramp16.png"
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    _, picture = load_image(path, (64, 64), Preprocess((0.0,), (1.0,), crop_fraction=1.0), 1)
    assert picture.min() == 0 and picture.max() == 255  # not one clipped colour
    np.testing.assert_allclose(picture[0, :, 0], np.round(ramp[0] / 257), atol=1)


def test_float_images_are_refused_naming_the_mode(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.random.default_rng(0).random((8, 8)).astype(np.float32)).save(path)
    with pytest.raises(InputError, match=r"32-bit float image \(mode F\)"):
        load_image(path, (8, 8), PRESETS["imagenet"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xd8\xff\xe0 a JPEG", "expected a .npy array file .* bytes ff d8 ff e0"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4', 'fortran_order", "cannot read array"),
        (
            b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, "
            + b"'shape': (10**12,),}"
            + b" " * 6
            + b"\n",
            "cannot read array",
        ),
        (b"", "expected a .npy array file .* bytes none"),
    ],
)
def test_malformed_arrays_are_one_error(tmp_path, content, message):
    path = tmp_path / "x.npy"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_array(path)


def test_an_empty_batch_is_refused(tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 3, 8, 8), np.float32))
    with pytest.raises(InputError, match=r"expected at least one input, got shape \(0, 3, 8, 8\)"):
        load_inputs([path], InputFormat((8, 8)))


@pytest.mark.parametrize(
    ("text", "shape", "message"),
    [
        ("16", ("N", 3, "H", "W"), "--size expects HxW such as 224x224, got '16'"),
        ("0x5", ("N", 3, "H", "W"), "--size expects HxW"),
        ("32x32", ("N", 1, 150), r"--size HxW is for image models; this model takes inputs"),
    ],
)
def test_bad_sizes_say_what_they_expect(text, shape, message):
    with pytest.raises(InputError, match=message):
        InputFormat.for_model(shape, False, PRESETS["imagenet"], text)


def test_generated_names_never_collide():
    assert unique_names(["x", "x", "x_1"]) == ["x", "x_2", "x_1"]
    names = unique_names(["a", "a_1", "a", "a", "a_2", "a_1"])
    assert len(set(names)) == 6


def test_inputs_whose_names_collide_keep_their_own_outputs(tmp_path):
    for name, colour in (("x.jpg", 10), ("x.png", 120), ("x_1.jpg", 240)):
        Image.new("RGB", (8, 8), (colour, colour, colour)).save(tmp_path / name)
    items = dataset_items([str(tmp_path)])
    assert len({item.name for item in items}) == 3
    _, _pictures, names = load_inputs(
        [tmp_path / n for n in ("x.jpg", "x.png", "x_1.jpg")], InputFormat((8, 8))
    )
    assert len(set(names)) == 3 and names[2] == "x_1"


def test_globs_do_not_follow_folder_links_into_a_loop(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "one.png")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    assert expand(str(tmp_path / "**" / "*.png")) == [tmp_path / "a" / "one.png"]
    assert expand(str(tmp_path)) == [tmp_path / "a" / "one.png"]


def test_a_binary_list_file_is_named(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xff\xfe\x00\x81 binary")
    with pytest.raises(InputError, match=r"list.txt: expected a text list of input paths"):
        expand(str(path))


def non_tiling_windows(length: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """Captum's windows along one axis: every stride step until one reaches the end, the last
    clipped at the border."""
    windows, start = [], 0
    while True:
        windows.append((start, min(start + patch, length)))
        if start + patch >= length:
            return windows
        start += stride


def test_occlusion_covers_sizes_the_windows_do_not_tile():
    from toy_models import linear_onnx

    from onnxcam import Explainer

    rng = np.random.default_rng(0)
    shape = (1, 19, 17)
    V = rng.standard_normal((int(np.prod(shape)), 3))
    x = rng.standard_normal((1, *shape)).astype(np.float32)
    explainer = Explainer(linear_onnx(V, shape), layer="x", progress=False)
    result = explainer.explain(x, method="occlusion", patch=6, stride=4, score="logit")
    contribution = (V[:, result.targets[0]].reshape(shape) * x[0]).sum(axis=0)
    total, count = np.zeros(shape[1:]), np.zeros(shape[1:])
    for r0, r1 in non_tiling_windows(19, 6, 4):
        for c0, c1 in non_tiling_windows(17, 6, 4):
            total[r0:r1, c0:c1] += contribution[r0:r1, c0:c1].sum()
            count[r0:r1, c0:c1] += 1
    assert count.min() >= 1  # every position covered
    np.testing.assert_allclose(result.raw[0], total / count, atol=1e-4)
    assert [s for s, _ in non_tiling_windows(19, 6, 4)] == window_starts(19, 6, 4).tolist()
