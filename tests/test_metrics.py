"""Faithfulness metrics: golden checks of algorithms §4 and direct references on linear models."""

from __future__ import annotations

import numpy as np
import pytest
from toy_models import linear_onnx

from onnxcam import Explainer, metrics
from onnxcam.engine.targets import softmax

SHAPE = (3, 12, 10)
rng = np.random.default_rng(41)


@pytest.fixture(scope="module")
def linear():
    """Class 0 logit = V0 . x, class 1 logit = 0: p0 = sigmoid(V0 . x)."""
    V = np.zeros((int(np.prod(SHAPE)), 2))
    V[:, 0] = rng.standard_normal(V.shape[0]) * 0.3
    x = rng.standard_normal((2, *SHAPE)).astype(np.float32)
    return V, x, Explainer(linear_onnx(V, SHAPE), layer="x", progress=False, batch_size=16)


def prob0(V, x):
    logits = np.stack([x.reshape(len(x), -1) @ V[:, 0], np.zeros(len(x))], axis=1)
    return softmax(logits)[:, 0]


def test_auc_golden():
    assert metrics.auc(np.linspace(1, 0, 11)) == pytest.approx(0.5)
    assert metrics.auc([0.0, 1.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2 points"):
        metrics.auc([1.0])


def test_pointing_game_strict_tolerance():
    heat = np.zeros((1, 30, 30))
    heat[0, 0, 0] = 1  # point (x=0, y=0)
    miss, hit = np.zeros((1, 30, 30)), np.zeros((1, 30, 30))
    miss[0, 9, 12] = 1  # d^2 = 225 = 15^2: not < 15^2
    hit[0, 9, 11] = 1  # d^2 = 202
    assert metrics.pointing_game(heat, miss).tolist() == [0.0]
    assert metrics.pointing_game(heat, hit).tolist() == [1.0]


def test_energy_pointing_game():
    heat = np.array([[[1.0, 3.0], [0.0, 4.0]]])
    mask = np.array([[[0, 1], [0, 1]]])
    assert metrics.energy_pointing_game(heat, mask).tolist() == [pytest.approx(7 / 8)]


def test_average_drop_and_increase_equal_direct_computation(linear):
    V, x, explainer = linear
    maps = rng.random((2, *SHAPE[1:])).astype(np.float32)
    classes = np.array([0, 1])
    drop = metrics.average_drop(explainer, x, maps, classes)
    increase = metrics.increase_in_confidence(explainer, x, maps, classes)
    y = np.array([prob0(V, x)[0], 1 - prob0(V, x)[1]])
    o_all = prob0(V, x * maps[:, None])
    o = np.array([o_all[0], 1 - o_all[1]])
    np.testing.assert_allclose(drop, np.maximum(y - o, 0) / y, atol=1e-6)
    np.testing.assert_array_equal(increase, (o > y).astype(float))


def test_win_rate_ties_count_for_no_one():
    rates, ties = metrics.win_rate({"a": [0.1, 0.5, 0.2, 0.3], "b": [0.2, 0.4, 0.2, 0.1]})
    assert rates == {"a": 0.25, "b": 0.5} and ties == 0.25


def contributions(V, x, reference):
    return ((x - reference) * V[:, 0].reshape(x.shape[1:])).sum(axis=1)


def test_deletion_prefers_the_true_ranking(linear):
    V, x, explainer = linear
    classes = np.zeros(2, int)
    true = contributions(V, x, 0)
    best = metrics.deletion(explainer, x, true, classes, step=6)
    worst = metrics.deletion(explainer, x, -true, classes, step=6)
    assert np.all(best < worst)
    curves = metrics.causal_curves(explainer, x, true, classes, "deletion", step=6)
    assert curves.scores.shape == (2, 21)
    np.testing.assert_allclose(curves.fractions, np.arange(21) / 20)
    np.testing.assert_allclose(curves.scores[:, 0], prob0(V, x), atol=1e-6)  # nothing removed
    np.testing.assert_allclose(curves.scores[:, -1], 0.5, atol=1e-6)  # all removed: logit 0


def test_deletion_curve_equals_direct_computation(linear):
    V, x, explainer = linear
    maps = rng.random((2, *SHAPE[1:]))
    curves = metrics.causal_curves(explainer, x, maps, np.zeros(2, int), "deletion", step=7)
    order = np.argsort(-maps.reshape(2, -1), axis=1, kind="stable")
    positions = SHAPE[1] * SHAPE[2]
    assert curves.scores.shape == (2, 19)  # ceil(120 / 7) + 1 points, the last one partial
    for n in range(2):
        for i in (0, 5, 17, 18):
            kept = x[n].reshape(3, -1).copy()
            kept[:, order[n, : min(7 * i, positions)]] = 0
            expected = prob0(V, kept.reshape(1, *SHAPE))[0]
            assert curves.scores[n, i] == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(curves.areas(), [metrics.auc(c) for c in curves.scores])


def test_fraction_grid_counts_and_trapezoid(linear):
    assert metrics.step_counts(10, "fraction", steps=4).tolist() == [0, 2, 5, 8, 10]
    assert metrics.step_counts(10, "uniform", step=4).tolist() == [0, 4, 8, 10]
    V, x, explainer = linear
    classes = np.zeros(2, int)
    maps = rng.random((2, *SHAPE[1:]))
    curves = metrics.causal_curves(
        explainer, x, maps, classes, "deletion", grid="fraction", steps=7
    )
    counts = np.round(np.arange(8) * 120 / 7)
    np.testing.assert_allclose(curves.fractions, counts / 120)
    trapezoid = [np.sum((c[1:] + c[:-1]) / 2 * np.diff(curves.fractions)) for c in curves.scores]
    np.testing.assert_allclose(curves.areas(), trapezoid)
    # where the step divides the positions, both grids give the same areas (algorithms §3.2)
    uniform = metrics.deletion(explainer, x, maps, classes, step=6)
    fraction = metrics.deletion(explainer, x, maps, classes, grid="fraction", steps=20)
    np.testing.assert_allclose(uniform, fraction, atol=1e-12)
    true = contributions(V, x, 0)
    best = metrics.deletion(explainer, x, true, classes, grid="fraction", steps=10)
    worst = metrics.deletion(explainer, x, -true, classes, grid="fraction", steps=10)
    assert np.all(best < worst)
    with pytest.raises(ValueError, match="grid must be one of"):
        metrics.deletion(explainer, x, maps, classes, grid="log")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        metrics.insertion(explainer, x, maps, classes, grid="fraction", steps=0)


def test_pointing_accuracy_per_class_and_global():
    class_mean, overall = metrics.pointing_accuracy(np.array([1, 0, 1, 1]), np.array([3, 3, 5, 5]))
    assert class_mean == pytest.approx((0.5 + 1.0) / 2) and overall == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one class per hit"):
        metrics.pointing_accuracy(np.array([1, 0]), np.array([1, 2, 3]))


def test_win_indicators_sum_with_ties_to_one():
    wins, ties = metrics.win_indicators({"a": [0.1, 0.5, 0.2], "b": [0.2, 0.4, 0.2]})
    assert wins["a"].tolist() == [1, 0, 0] and wins["b"].tolist() == [0, 1, 0]
    np.testing.assert_array_equal(wins["a"] + wins["b"] + ties, 1)


def test_insertion_prefers_the_true_ranking(linear):
    V, x, explainer = linear
    classes = np.zeros(2, int)
    true = contributions(V, x, metrics.rise_blur(x))
    best = metrics.insertion(explainer, x, true, classes, step=6)
    worst = metrics.insertion(explainer, x, -true, classes, step=6)
    assert np.all(best > worst)


def test_rise_blur_kernel():
    delta = np.zeros((1, 1, 21, 21), np.float32)
    delta[0, 0, 10, 10] = 1
    blurred = metrics.rise_blur(delta)[0, 0]
    assert blurred[10, 10] == pytest.approx(0.00883, abs=5e-5)  # algorithms §3.2: nearly flat
    assert blurred[5, 5] == pytest.approx(0.00774, abs=5e-5)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5) and blurred[4, 10] == 0


def test_metric_input_checks(linear):
    _, x, explainer = linear
    with pytest.raises(ValueError, match="expected maps of shape"):
        metrics.average_drop(explainer, x, np.zeros((2, 5, 5)), np.zeros(2, int))
    with pytest.raises(ValueError, match="mode must be"):
        metrics.causal_curves(explainer, x, np.zeros((2, 12, 10)), np.zeros(2, int), "both")
