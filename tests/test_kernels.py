"""Numba kernels against torch.nn.functional.interpolate and their NumPy references."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from onnxcam.kernels import (
    map_spread,
    masked_inputs,
    minmax_normalize,
    resize,
    resize_normalize,
    weighted_sum,
)
from onnxcam.kernels._jit import cache_dir_is_writable
from onnxcam.kernels.combine import weighted_sum_reference
from onnxcam.kernels.masks import masked_inputs_reference
from onnxcam.kernels.normalize import LANES, min_max, minmax_normalize_reference
from onnxcam.kernels.resize import resize_reference
from onnxcam.kernels.spread import map_spread_reference

rng = np.random.default_rng(42)


def torch_resize(maps: np.ndarray, size, align_corners: bool) -> np.ndarray:
    mode = "bilinear" if len(size) == 2 else "linear"
    out = F.interpolate(
        torch.from_numpy(maps)[None], size=size, mode=mode, align_corners=align_corners
    )
    return out[0].numpy()


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(
    ("shape", "size"),
    [((4, 7, 9), (100, 333)), ((3, 5, 5), (3, 3)), ((2, 7, 7), (224, 224)), ((2, 1, 6), (5, 13))],
)
def test_bilinear_matches_torch(shape, size, align_corners):
    maps = rng.standard_normal(shape).astype(np.float32)
    got = resize(maps, size, align_corners)
    assert got.shape == (shape[0], *size)
    np.testing.assert_allclose(got, torch_resize(maps, size, align_corners), atol=1e-5)
    np.testing.assert_allclose(got, resize_reference(maps, size, align_corners), atol=1e-5)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(("length", "size"), [(17, 150), (9, 4), (1, 8)])
def test_linear_1d_matches_torch(length, size, align_corners):
    maps = rng.standard_normal((3, length)).astype(np.float32)
    got = resize(maps, (size,), align_corners)
    np.testing.assert_allclose(got, torch_resize(maps, (size,), align_corners), atol=1e-5)


def test_align_corners_changes_the_result():
    maps = rng.standard_normal((1, 7, 7)).astype(np.float32)
    assert np.abs(resize(maps, (224, 224), True) - resize(maps, (224, 224), False)).max() > 0.05


def test_resize_rejects_mismatched_size():
    with pytest.raises(ValueError, match="does not match"):
        resize(np.zeros((2, 4, 4), np.float32), (8,))


def test_minmax_normalize_matches_reference_and_flags_constant_maps():
    maps = rng.standard_normal((5, 6, 7)).astype(np.float32)
    maps[2] = 3.5
    got, constant = minmax_normalize(maps, eps=1e-8)
    want, want_constant = minmax_normalize_reference(maps, eps=1e-8)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert constant.tolist() == want_constant.tolist() == [False, False, True, False, False]
    assert np.all(got[2] == 0)
    assert got[0].min() == 0 and abs(got[0].max() - 1) < 1e-6


@pytest.mark.parametrize(
    "length", [2, 5, LANES - 1, LANES, LANES + 1, 2 * LANES + 1, 300, 224 * 224]
)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_minmax_normalize_finds_extremes_anywhere(length, where):
    """The min and max run in lanes (rows of LANES values, then the remainder): an extreme at
    the start, inside, or in the remainder must be found all the same."""
    maps = rng.uniform(-1, 1, (2, length)).astype(np.float32)
    at = {"first": 0, "middle": length // 2, "last": length - 1}[where]
    maps[0, at], maps[1, at] = 5.0, -5.0
    got, constant = minmax_normalize(maps, eps=0.0)
    want, _ = minmax_normalize_reference(maps, eps=0.0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[0, at] == pytest.approx(1.0) and got[1, at] == 0.0
    assert not constant.any()


@pytest.mark.parametrize("at", [0, 7, 15 * LANES + 40])  # first lane, first row, remainder
def test_min_max_skips_nan(at):
    values = rng.uniform(-1, 1, 15 * LANES + 41).astype(np.float32)
    values[500], values[600] = 3.0, -3.0
    values[at] = np.nan
    assert min_max(values) == (-3.0, 3.0)


def test_minmax_normalize_without_eps_keeps_constant_maps_finite():
    got, constant = minmax_normalize(np.ones((2, 3, 3), np.float32), eps=0.0)
    assert constant.all() and np.all(got == 0)


def test_eps_enters_the_denominator():
    maps = np.array([[0.0, 1e-7]], np.float32)
    got, _ = minmax_normalize(maps, eps=1e-7)
    assert got[0, 1] == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("shape", [(3, 5, 5), (3, 7, 9), (2, 11)])
def test_resize_normalize_equals_resize_then_normalize(shape):
    maps = rng.standard_normal(shape).astype(np.float32)
    size = (64, 48)[: len(shape) - 1]
    got, constant = resize_normalize(maps, size)
    want, _ = minmax_normalize_reference(resize_reference(maps, size), 1e-8)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not constant.any()


@pytest.mark.parametrize("shape", [(2, 6, 7, 7), (3, 5, 40), (2, 4, 1, 9)])
def test_map_spread_matches_torch_std_and_flags_constant_maps(shape):
    maps = rng.standard_normal(shape).astype(np.float32) * 3
    maps[0, 1] = 2.5  # constant
    maps[-1, -1] = 0.0
    maps[0, 2] = maps[0, 3]  # equal maps, equal std (the tie the channel choice breaks by k)
    constant, std = map_spread(maps)
    want_constant, want_std = map_spread_reference(maps)
    np.testing.assert_array_equal(constant, want_constant)
    assert constant[0, 1] and constant[-1, -1] and constant.sum() == 2
    torch_std = torch.from_numpy(maps).double().flatten(2).std(dim=-1, unbiased=False)
    np.testing.assert_allclose(std, torch_std.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std, want_std, rtol=1e-12, atol=1e-12)
    assert std[0, 2] == std[0, 3] and std[0, 1] == 0.0


@pytest.mark.parametrize("relu", [True, False])
def test_weighted_sum_matches_reference(relu):
    acts = rng.standard_normal((3, 16, 5, 6)).astype(np.float32)
    weights = rng.standard_normal((3, 16))
    got = weighted_sum(acts, weights, relu)
    np.testing.assert_allclose(got, weighted_sum_reference(acts, weights, relu), atol=1e-5)
    assert (got.min() >= 0) == relu


def test_weighted_sum_rejects_mismatched_weights():
    with pytest.raises(ValueError, match="do not match"):
        weighted_sum(np.zeros((2, 3, 4, 4), np.float32), np.zeros((2, 4)))


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(
    ("x_shape", "a_shape"), [((2, 3, 40, 30), (2, 6, 5, 4)), ((2, 2, 50), (2, 6, 7))]
)
def test_masked_inputs_match_reference(x_shape, a_shape, align_corners):
    x = rng.standard_normal(x_shape).astype(np.float32)
    acts = rng.random(a_shape).astype(np.float32)
    acts[1, 2] = 0.25  # a constant channel gives a zero mask
    images = np.array([0, 1, 1, 0, 1])
    channels = np.array([5, 2, 0, -1, 4])  # -1: a zero input
    out = np.full((8, *x_shape[1:]), np.nan, np.float32)
    got = masked_inputs(x, acts, images, channels, out, align_corners)
    assert got.shape == (5, *x_shape[1:]) and np.shares_memory(got, out)
    want = masked_inputs_reference(x, acts, images, channels, align_corners)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.all(got[1] == 0) and np.all(got[3] == 0)
    assert np.isnan(out[5:]).all()  # nothing written past the batch


def test_cache_choice(tmp_path, monkeypatch):
    assert cache_dir_is_writable(tmp_path / "cache")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert not cache_dir_is_writable(blocker / "cache")
    monkeypatch.setenv("ONNXCAM_NUMBA_CACHE", "0")
    assert not cache_dir_is_writable(tmp_path / "cache")


def test_import_works_where_the_cache_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(blocker / "cache")}
    code = (
        "import numpy as np; from onnxcam.kernels import _jit, resize;"
        "print(_jit.CACHE, resize(np.ones((1, 2, 2), np.float32), (3, 3)).sum())"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "9.0"]
