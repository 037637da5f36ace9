"""Context-aware saliency: the patch-search kernel and the distance transform against NumPy and
SciPy references, Lab against scikit-image, the whole single-scale algorithm against a
brute-force loop, and known answers (one distinct patch is the most salient region)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from onnxcam import ContextSaliency, context_saliency
from onnxcam.engine.lab import rgb_to_lab
from onnxcam.kernels.distance import distance_to_mask
from onnxcam.kernels.patch_search import knn_mean_distance, knn_mean_distance_reference


@pytest.mark.parametrize("self_offset", [0, 40, None])
def test_patch_search_equals_the_numpy_reference(self_offset):
    rng = np.random.default_rng(0)
    queries = rng.random((70, 27), np.float32)  # not a multiple of the kernel's blocks
    query_pos = rng.random((70, 2), np.float32)
    extra = rng.random((200, 27), np.float32)
    extra_pos = rng.random((200, 2), np.float32)
    if self_offset == 40:  # the queries sit at rows 40..109 of the candidates
        candidates = np.concatenate([extra[:40], queries, extra[40:]])
        cand_pos = np.concatenate([extra_pos[:40], query_pos, extra_pos[40:]])
    else:
        candidates = np.concatenate([queries, extra])
        cand_pos = np.concatenate([query_pos, extra_pos])
    for k in (1, 17, 64):
        got = knn_mean_distance(queries, query_pos, candidates, cand_pos, k, 3.0, self_offset)
        want = knn_mean_distance_reference(
            queries, query_pos, candidates, cand_pos, k, 3.0, self_offset
        )
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    if self_offset is None:  # each query is among the candidates: its nearest is at 0
        got = knn_mean_distance(queries, query_pos, candidates, cand_pos, 1, 3.0, None)
        np.testing.assert_array_equal(got, 0)


def test_patch_search_rejects_bad_shapes_and_k():
    q = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="same D"):
        knn_mean_distance(q, np.zeros((4, 2)), np.zeros((4, 5)), np.zeros((4, 2)), 1, 3.0)
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        knn_mean_distance(q, np.zeros((4, 2)), q, np.zeros((4, 2)), 4, 3.0, 0)


@pytest.mark.parametrize("shape", [(40, 57), (1, 33), (9, 1), (64, 64)])
def test_distance_transform_equals_scipy(shape):
    mask = np.random.default_rng(1).random(shape) > 0.95
    mask.flat[len(mask.flat) // 2] = True
    np.testing.assert_allclose(distance_to_mask(mask), distance_transform_edt(~mask), atol=1e-12)
    line = mask.reshape(-1)
    np.testing.assert_allclose(distance_to_mask(line), distance_transform_edt(~line), atol=1e-12)


def test_distance_transform_without_marks_is_infinite():
    assert np.isinf(distance_to_mask(np.zeros((3, 4), bool))).all()


def test_lab_equals_scikit_image():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(2).random((3, 11, 13))
    rgb[:, 0, :4] = [[0, 1, 0.01, 0.04045]] * 3  # black, white, both sides of the sRGB knee
    want = np.moveaxis(rgb2lab(np.moveaxis(rgb, 0, -1)), -1, 0)
    np.testing.assert_allclose(rgb_to_lab(rgb), want, atol=1e-9)


def brute_force_saliency(x: np.ndarray, patch: int, k: int, c: float, threshold: float):
    """Single-scale context-aware saliency with a patch at every pixel, by explicit loops."""
    _, h, w = x.shape
    f = (x - x.min()) / (x.max() - x.min())
    half = patch // 2
    padded = np.pad(f, ((0, 0), (half, half), (half, half)), mode="edge")
    vectors, centres = [], []
    for y in range(h):
        for z in range(w):
            vectors.append(padded[:, y : y + patch, z : z + patch].ravel())
            centres.append((y / max(h, w), z / max(h, w)))
    vectors, centres = np.array(vectors), np.array(centres)
    saliency = np.empty(len(vectors))
    for i in range(len(vectors)):
        distances = []
        for j in range(len(vectors)):
            if i != j:
                colour = np.linalg.norm(vectors[i] - vectors[j]) / np.sqrt(vectors.shape[1])
                distances.append(colour / (1 + c * np.linalg.norm(centres[i] - centres[j])))
        saliency[i] = 1 - np.exp(-np.mean(sorted(distances)[:k]))
    s = saliency.reshape(h, w)
    s = (s - s.min()) / (s.max() - s.min())
    foci = distance_transform_edt(~(s > threshold))
    s = s * (1 - foci / foci.max())
    return (s - s.min()) / (s.max() - s.min())


def test_single_scale_equals_a_brute_force_loop():
    x = np.random.default_rng(3).random((2, 9, 12)).astype(np.float32)
    x[:, 2:5, 3:6] += 1.5
    opts = ContextSaliency(
        patch=3, stride=1, k=6, scales=(1.0,), neighbour_scales=(1.0,), threshold=0.6,
        colour="raw",
    )  # fmt: skip
    got, info = context_saliency(x, opts)
    assert info["work_size"] == [9, 12] and info["patches"] == {1.0: 108}
    np.testing.assert_allclose(got, brute_force_saliency(x, 3, 6, 3.0, 0.6), atol=2e-6)


def test_neighbour_scales_in_any_order_give_the_same_map():
    x = np.random.default_rng(4).random((3, 40, 50)).astype(np.float32)
    first, _ = context_saliency(x, ContextSaliency(neighbour_scales=(1.0, 0.5, 0.25)))
    shuffled, _ = context_saliency(x, ContextSaliency(neighbour_scales=(0.25, 1.0, 0.5)))
    np.testing.assert_allclose(shuffled, first, atol=1e-5)  # only the summing order differs
    other, _ = context_saliency(x, ContextSaliency(neighbour_scales=(0.5,)))  # own scale left out
    assert other.shape == (40, 50) and np.abs(other - first).max() > 0.01


def square_on_grey(h=120, w=160, top=70, left=30, side=14):
    image = np.full((3, h, w), 0.5, np.float32)
    image[:, top : top + side, left : left + side] = np.array([0.9, 0.15, 0.1])[:, None, None]
    return image, (slice(top, top + side), slice(left, left + side))


def test_one_distinct_patch_on_a_uniform_background_is_the_most_salient_region():
    image, square = square_on_grey()
    saliency, info = context_saliency(image)
    assert saliency.shape == image.shape[1:] and not info["constant"]
    y, x = np.unravel_index(saliency.argmax(), saliency.shape)
    assert square[0].start - 3 <= y < square[0].stop + 3
    assert square[1].start - 3 <= x < square[1].stop + 3
    inside = saliency[square].mean()
    outside = np.delete(saliency.ravel(), np.ravel_multi_index(np.mgrid[square], saliency.shape))
    assert inside > 0.5 and inside > 10 * outside.mean()


def test_a_distinct_patch_on_a_repeating_texture_is_the_most_salient_region():
    yy, xx = np.mgrid[:100, :100]
    stripes = 0.5 + 0.3 * np.sin(xx / 2.0)  # every background patch has many twins
    image = np.repeat(stripes[None], 3, axis=0).astype(np.float32)
    image[:, 20:32, 60:72] = 0.5 + 0.3 * np.sin(yy[20:32, 60:72] / 2.0)  # the stripes turned
    saliency, _ = context_saliency(image)
    y, x = np.unravel_index(saliency.argmax(), saliency.shape)
    assert 17 <= y < 35 and 57 <= x < 75
    assert saliency[20:32, 60:72].mean() > 4 * saliency.mean()


def test_a_bump_on_a_series_is_the_most_salient_stretch():
    t = np.arange(300)
    series = np.stack([np.sin(t / 5.0), np.cos(t / 5.0)]).astype(np.float32)
    series[:, 200:215] += 3.0
    saliency, info = context_saliency(series)
    assert saliency.shape == (300,) and info["work_size"] == [1, 250]  # longer than side: reduced
    assert 195 <= saliency.argmax() < 220
    assert saliency[200:215].mean() > 4 * saliency.mean()


def test_large_inputs_are_searched_at_side_and_mapped_back():
    image, square = square_on_grey(600, 800, 300, 150, 60)
    saliency, info = context_saliency(image)
    assert saliency.shape == (600, 800) and info["work_size"] == [188, 250]
    assert saliency[square].mean() > 10 * saliency.mean() / 2
    with pytest.raises(ValueError, match="would compare 53868 patches"):
        context_saliency(image, ContextSaliency(side=None))


def test_constant_input_gives_a_zero_map():
    saliency, info = context_saliency(np.full((3, 40, 40), 0.3, np.float32))
    assert info["constant"] and not saliency.any()


@pytest.mark.parametrize(
    ("x", "options", "message"),
    [
        (np.zeros((3, 4, 4, 4)), {}, r"\(C, H, W\) image or \(C, T\) series"),
        (np.full((3, 9, 9), np.nan), {}, "finite"),
        (np.zeros((3, 1, 1)), {}, "2 or more samples"),
        (np.full((3, 9, 9), 2.0), {}, r"'lab' expects 3 channel\(s\) with values in \[0, 1\]"),
        (np.zeros((2, 9, 9)), {"colour": "lab"}, "expects 3 channel"),
        (np.zeros((3, 9, 9)), {"patch": 0}, "patch must be a positive integer"),
        (np.zeros((3, 9, 9)), {"scales": (1.0, 1.5)}, r"scales must be fractions in \(0, 1\]"),
        (np.zeros((3, 9, 9)), {"threshold": 1.0}, "threshold"),
        (np.zeros((3, 9, 9)), {"side": 4}, "side must be an integer >= 8"),
        (np.zeros((3, 9, 9)), {"colour": "hsv"}, "unknown colour 'hsv': expected one of"),
    ],
)
def test_bad_input_and_options_are_refused(x, options, message):
    with pytest.raises(ValueError, match=message):
        context_saliency(x, ContextSaliency(**options))
