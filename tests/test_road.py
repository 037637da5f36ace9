"""ROAD: the imputation against a direct sparse solve built as the reference code builds it, and
the batched metric against a per-item computation on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csc_matrix, lil_matrix
from scipy.sparse.linalg import spsolve
from toy_models import linear_onnx

from onnxcam import Explainer, metrics
from onnxcam.engine.targets import softmax
from onnxcam.evaluation.metrics.road import NEIGHBOURS, removed_positions, road_order

SHAPE = (3, 9, 11)
rng = np.random.default_rng(7)


def reference_impute(image: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """The reference's system, written independently: one equation per removed pixel, its
    in-image neighbours' weights summed on the diagonal, kept neighbours on the right."""
    channels, height, width = image.shape
    removed = [(r, c) for r in range(height) for c in range(width) if missing[r, c]]
    index = {p: i for i, p in enumerate(removed)}
    A = lil_matrix((len(removed), len(removed)))
    b = np.zeros((len(removed), channels))
    for i, (r, c) in enumerate(removed):
        total = 0.0
        for dr, dc, weight in NEIGHBOURS:
            q = (r + dr, c + dc)
            if not (0 <= q[0] < height and 0 <= q[1] < width):
                continue
            total += weight
            if missing[q]:
                A[i, index[q]] = -weight
            else:
                b[i] += weight * image[:, q[0], q[1]]
        A[i, i] = total
    solved = spsolve(csc_matrix(A), b)
    out = image.astype(np.float64).copy()
    for i, (r, c) in enumerate(removed):
        out[:, r, c] = solved[i]
    return out


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_imputation_equals_direct_sparse_solve(share):
    image = rng.standard_normal(SHAPE).astype(np.float32)
    missing = rng.random(SHAPE[1:]) < share
    missing[0, 0] = missing[-1, 5] = True  # corners and borders renormalise their weights
    missing[4, 4] = False
    got = metrics.noisy_linear_impute(image, missing, noise=0)
    np.testing.assert_allclose(got, reference_impute(image, missing), atol=1e-5)
    np.testing.assert_array_equal(got[:, ~missing], image[:, ~missing])


def test_imputation_noise_is_absolute_and_only_on_removed_positions():
    image = rng.standard_normal((2, 40, 40)).astype(np.float32)
    missing = np.zeros((40, 40), bool)
    missing[5:35, 5:35] = True
    clean = metrics.noisy_linear_impute(image, missing, noise=0)
    noisy = metrics.noisy_linear_impute(image, missing, 0.01, np.random.default_rng(0))
    difference = (noisy - clean)[:, missing]
    assert difference.std() == pytest.approx(0.01, rel=0.05)
    np.testing.assert_array_equal(noisy[:, ~missing], image[:, ~missing])


def test_imputation_of_a_series_interpolates_linearly():
    series = np.array([[0.0, 9.0, 9.0, 3.0, 5.0]], np.float32)
    got = metrics.noisy_linear_impute(series, np.array([0, 1, 1, 0, 0], bool), noise=0)
    np.testing.assert_allclose(got, [[0, 1, 2, 3, 5]], atol=1e-6)


def test_imputation_errors():
    image = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="at least one kept position"):
        metrics.noisy_linear_impute(image, np.ones((4, 4), bool))
    with pytest.raises(ValueError, match=r"expected a mask of shape \(4, 4\)"):
        metrics.noisy_linear_impute(image, np.ones((4, 5), bool))


def test_removed_positions_morf_and_lerf():
    order = np.array([4, 2, 0, 1, 3, 5, 6, 7, 8, 9])
    assert removed_positions(order, 0.3, True).tolist() == [4, 2, 0]
    assert removed_positions(order, 0.3, False).tolist() == [7, 8, 9]  # keeps the top 7


def test_road_order_breaks_ties_with_one_field_for_all_maps():
    flat = np.zeros((2, 4, 4))
    first, second = road_order(flat, seed=3)
    assert first.tolist() == second.tolist() and sorted(first) == list(range(16))
    assert first.tolist() != list(range(16))


@pytest.fixture(scope="module")
def linear():
    V = np.zeros((int(np.prod(SHAPE)), 2))
    V[:, 0] = rng.standard_normal(V.shape[0]) * 0.3
    x = rng.standard_normal((2, *SHAPE)).astype(np.float32)
    return V, x, Explainer(linear_onnx(V, SHAPE), layer="x", progress=False, batch_size=5)


def prob0(V, x):
    logits = np.stack([x.reshape(len(x), -1) @ V[:, 0], np.zeros(len(x))], axis=1)
    return softmax(logits)[:, 0]


def test_road_curves_equal_per_item_computation(linear):
    V, x, explainer = linear
    maps = rng.random((2, *SHAPE[1:]))
    fractions = (0.2, 0.5, 0.8)
    curves = metrics.road_curves(explainer, x, maps, np.zeros(2, int), fractions, seed=4)
    order = road_order(maps, seed=4)
    for o, name in enumerate(("morf", "lerf")):
        assert curves[name].scores.shape == (2, 3)
        for n in range(2):
            for j, fraction in enumerate(fractions):
                missing = np.zeros(order.shape[1], bool)
                missing[removed_positions(order[n], fraction, name == "morf")] = True
                generator = np.random.default_rng((4, n, o, j))
                imputed = metrics.noisy_linear_impute(
                    x[n], missing.reshape(SHAPE[1:]), 0.01, generator
                )
                expected = prob0(V, imputed[None])[0]
                assert curves[name].scores[n, j] == pytest.approx(expected, abs=1e-6)


def test_road_prefers_the_true_ranking(linear):
    V, x, explainer = linear
    classes = np.zeros(2, int)
    true = (x * V[:, 0].reshape(SHAPE)).sum(axis=1)
    assert np.all(
        metrics.road(explainer, x, true, classes, "morf")
        < metrics.road(explainer, x, -true, classes, "morf")
    )
    combined = metrics.road(explainer, x, true, classes)
    morf = metrics.road(explainer, x, true, classes, "morf")
    lerf = metrics.road(explainer, x, true, classes, "lerf")
    np.testing.assert_allclose(combined, (lerf - morf) / 2)
    assert np.all(combined > metrics.road(explainer, x, -true, classes))


def test_road_input_errors(linear):
    _, x, explainer = linear
    maps = np.zeros((2, *SHAPE[1:]))
    with pytest.raises(ValueError, match=r"fractions must be non-empty and in \[0, 1\)"):
        metrics.road(explainer, x, maps, np.zeros(2, int), fractions=(0.5, 1.0))
    with pytest.raises(ValueError, match="order must be one of"):
        metrics.road(explainer, x, maps, np.zeros(2, int), order="both")
