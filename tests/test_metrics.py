"""Faithfulness metrics: golden checks of spec §4 and direct references on linear models."""

from __future__ import annotations

import numpy as np
import pytest
from toy_models import linear_onnx

from onnxcam import Explainer
from onnxcam.engine import metrics
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
    assert curves.shape == (2, 21)
    np.testing.assert_allclose(curves[:, 0], prob0(V, x), atol=1e-6)  # nothing removed yet
    np.testing.assert_allclose(curves[:, -1], 0.5, atol=1e-6)  # everything removed: logit 0


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
    assert blurred[10, 10] == pytest.approx(0.00883, abs=5e-5)  # spec §3.2: nearly flat
    assert blurred[5, 5] == pytest.approx(0.00774, abs=5e-5)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5) and blurred[4, 10] == 0


def test_metric_input_checks(linear):
    _, x, explainer = linear
    with pytest.raises(ValueError, match="expected maps of shape"):
        metrics.average_drop(explainer, x, np.zeros((2, 5, 5)), np.zeros(2, int))
    with pytest.raises(ValueError, match="mode must be"):
        metrics.causal_curves(explainer, x, np.zeros((2, 12, 10)), np.zeros(2, int), "both")
