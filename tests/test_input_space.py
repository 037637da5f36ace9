"""RISE and occlusion against direct references on linear models (algorithms §4, toy model ii)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from toy_models import linear_onnx

from onnxcam import Explainer
from onnxcam.engine.methods.occlusion import window_starts
from onnxcam.engine.methods.rise import RiseMasks

rng = np.random.default_rng(11)


@pytest.fixture(params=[(3, 12, 10), (2, 30)], ids=["2d", "1d"])
def linear(request):
    shape = request.param
    V = rng.standard_normal((int(np.prod(shape)), 4))
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    return V, x, Explainer(linear_onnx(V, shape), layer="x", progress=False, batch_size=7)


def test_rise_equals_direct_sum_over_a_fixed_mask_set(linear):
    V, x, explainer = linear
    result = explainer.explain(x, method="rise", n_masks=50, cells=3, p=0.4, seed=3, score="logit")
    masks = RiseMasks(x, 50, 3, 0.4, 3, np.zeros(50, int)).masks(np.arange(50))
    for n in range(2):
        c = result.targets[n]
        scores = np.array([(x[n] * m).ravel() @ V[:, c] for m in masks])
        want = np.tensordot(scores, masks, axes=1) / (50 * 0.4)
        np.testing.assert_allclose(result.raw[n], want, rtol=1e-4, atol=1e-4)


def test_rise_masks():
    x = np.zeros((1, 3, 40, 30), np.float32)
    masks = RiseMasks(x, 400, 5, 0.3, 0, np.zeros(400, int)).masks(np.arange(400))
    assert masks.shape == (400, 40, 30) and masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean() - 0.3) < 0.03
    again = RiseMasks(x, 400, 5, 0.3, 0, np.zeros(400, int)).masks(np.arange(10, 20))
    np.testing.assert_array_equal(again, masks[10:20])


def test_rise_seed(linear):
    _, x, explainer = linear
    a = explainer.explain(x, method="rise", n_masks=40, seed=1).maps
    b = explainer.explain(x, method="rise", n_masks=40, seed=1).maps
    c = explainer.explain(x, method="rise", n_masks=40, seed=2).maps
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_rise_memory_does_not_grow_with_the_mask_count(resnet_onnx):
    explainer = Explainer(resnet_onnx, progress=False, batch_size=32)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    peaks = []
    for n_masks in (256, 2048):
        tracemalloc.start()
        explainer.explain(x, method="rise", n_masks=n_masks)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    all_masks = 2048 * 32 * 32 * 4
    assert peaks[1] < 1.5 * peaks[0] and peaks[1] < all_masks


def test_occlusion_difference_equals_window_sum(linear):
    """Linear model, value 0, logit score: delta_w = sum over the window of V_c * X."""
    V, x, explainer = linear
    spatial = x.shape[2:]
    result = explainer.explain(x, method="occlusion", patch=4, stride=3, score="logit")
    starts = [window_starts(s, 4, 3) for s in spatial]
    for n in range(2):
        contribution = (V[:, result.targets[n]].reshape(x.shape[1:]) * x[n]).sum(axis=0)
        total, count = np.zeros(spatial), np.zeros(spatial)
        for corner in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(spatial)):
            region = tuple(slice(s, s + 4) for s in corner)
            total[region] += contribution[region].sum()
            count[region] += 1
        want = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        np.testing.assert_allclose(result.raw[n], want, atol=1e-4)
    assert result.metadata["windows"] == np.prod([len(s) for s in starts])


def test_occlusion_bad_patch(linear):
    _, x, explainer = linear
    with pytest.raises(ValueError, match="occlusion needs 1 <= patch"):
        explainer.explain(x, method="occlusion", patch=1000)
