"""1-D time series end to end on real UCR/UEA data: every method on a trained FCN, torch and
Keras (channels-last) exports of the same weights agreeing, Score-CAM against a torch reference
with masks broadcast over the variables, and the provisional faithfulness protocol."""

from __future__ import annotations

import numpy as np
import pytest
import references
import torch
from toy_models import hook_outputs

from onnxcam import Explainer, methods
from onnxcam.engine.backward import relevance
from onnxcam.engine.methods import method_class
from onnxcam.engine.methods.parts.attention import AttentionMethod
from onnxcam.evaluation.metrics.timeseries import (
    rankings,
    replace_steps,
    timeseries_faithfulness,
)

#: Smaller counts than the defaults, to keep the every-method test short.
SHORT = {"rise": {"n_masks": 400}, "ss-cam": {"n_samples": 4}, "is-cam": {"n_steps": 4}}


#: Every LRP composite but epsilon-plus-flat, whose flat first layer shares relevance evenly over
#: its receptive fields: Keras's explicit Pad nodes make those fields include the padding.
COMPOSITES = tuple(c for c in relevance.COMPOSITES if c != "epsilon-plus-flat")

#: The attention methods need a transformer's attention: an FCN has none.
CNN_METHODS = [m for m in methods() if not issubclass(method_class(m), AttentionMethod)]


def channels_last(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 1))


@pytest.mark.parametrize("method", CNN_METHODS)
def test_every_method_same_map_from_torch_and_keras(method, gunpoint, gunpoint_fcn):
    _, torch_path, keras_path = gunpoint_fcn
    x = gunpoint.x_test[:3]
    options = SHORT.get(method, {})
    from_torch = Explainer(torch_path, progress=False).explain(x, method=method, **options)
    keras = Explainer(keras_path, progress=False)
    assert keras.input_layout == "channels_last" and keras.layer == "relu3"
    from_keras = keras.explain(channels_last(x), method=method, **options)
    assert from_torch.maps.shape == from_keras.maps.shape == (3, gunpoint.length)
    # some map varies: its min-max (eps 1e-8) peaks at span / (span + eps), 0.99999 for a raw
    # span of 1e-3 (Group-CAM's, where this model's training leaves its group scores close)
    assert 0.99 < from_torch.maps.max() <= 1
    np.testing.assert_allclose(from_keras.maps, from_torch.maps, atol=1e-4)
    np.testing.assert_array_equal(from_keras.targets, from_torch.targets)


def test_score_cam_on_multivariate_series_equals_torch_reference(basicmotions, basicmotions_fcn):
    model, torch_path, keras_path = basicmotions_fcn
    x = basicmotions.x_test[::20]
    assert x.shape[1] == 6  # six variables: each mask covers all of them
    series = torch.from_numpy(x)
    acts = hook_outputs(model, series, ["block3"])["block3"]
    want, _, _, _ = references.score_cam(model, acts, series)
    got = Explainer(torch_path, progress=False).explain(x).maps
    np.testing.assert_allclose(got, want, atol=1e-4)
    keras = Explainer(keras_path, progress=False).explain(channels_last(x)).maps
    np.testing.assert_allclose(keras, want, atol=1e-4)


def test_replace_steps_substrates():
    series = np.array([[0.0, 1.0, 2.0, 9.0, 4.0, 5.0], [1.0, 1.0, 1.0, 1.0, 1.0, 7.0]])
    removed = np.array([0, 3, 5])
    interpolated = replace_steps(series, removed, "interpolate")
    np.testing.assert_allclose(interpolated[0], [1, 1, 2, 3, 4, 4])  # ends: nearest kept
    np.testing.assert_allclose(interpolated[1], [1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(replace_steps(series, removed, "zero")[:, removed], 0)
    means = replace_steps(series, removed, "mean")[:, removed]
    np.testing.assert_allclose(means, [[3.5] * 3, [2.0] * 3])
    noisy = replace_steps(series, removed, "noise", np.random.default_rng(0))
    np.testing.assert_array_equal(noisy[:, [1, 2, 4]], series[:, [1, 2, 4]])
    assert not np.allclose(noisy[:, removed], series[:, removed])
    with pytest.raises(ValueError, match="substrate must be one of"):
        replace_steps(series, removed, "blur")


def test_rankings_morf_lerf_random():
    maps = np.array([[0.1, 0.9, 0.5, 0.9]])
    ranks = rankings(maps, seed=3)
    np.testing.assert_array_equal(ranks["morf"][0], [1, 3, 2, 0])  # ties by index
    np.testing.assert_array_equal(ranks["lerf"][0], [0, 2, 3, 1])
    assert sorted(ranks["random"][0]) == [0, 1, 2, 3]


def test_faithfulness_curves_start_at_the_plain_accuracy(gunpoint, gunpoint_fcn):
    model, torch_path, _ = gunpoint_fcn
    explainer = Explainer(torch_path, progress=False)
    x, y = gunpoint.x_test[:40], gunpoint.y_test[:40]
    maps = explainer.explain(x).maps
    result = timeseries_faithfulness(explainer, x, maps, maps.argmax(1) % 2, y)
    with torch.no_grad():
        plain = (model(torch.from_numpy(x)).argmax(1).numpy() == y).mean()
    assert result.provisional and result.levels[0] == 0 and len(result.levels) == 11
    for order in ("morf", "lerf", "random"):
        assert result.accuracy[order][0] == pytest.approx(plain)
    with pytest.raises(ValueError, match="expected maps of shape"):
        timeseries_faithfulness(explainer, x, maps[:, :10], y, y)
    with pytest.raises(ValueError, match="substrate must be one of"):
        timeseries_faithfulness(explainer, x, maps, y, y, substrate="blur")


@pytest.mark.parametrize("data_name", ["gunpoint", "basicmotions"])
def test_score_cam_beats_random_ranking(data_name, request):
    """Provisional protocol (algorithms §3.5): the MoRF accuracy curve of Score-CAM falls faster
    than that of a random ranking, for the torch FCN and its channels-last Keras copy."""
    data = request.getfixturevalue(data_name)
    _, torch_path, keras_path = request.getfixturevalue(f"{data_name}_fcn")
    for path, x in ((torch_path, data.x_test), (keras_path, channels_last(data.x_test))):
        explainer = Explainer(path, progress=False)
        result = explainer.explain(x)
        faith = timeseries_faithfulness(explainer, x, result.maps, result.targets, data.y_test)
        assert faith.area["morf"] < faith.area["random"] - 0.02, faith.area
        assert faith.probability_area["morf"] < faith.probability_area["random"]


@pytest.mark.slow
@pytest.mark.parametrize("data_name", ["gunpoint", "basicmotions"])
def test_keras_trained_fcn_score_cam_beats_random(data_name, request, tmp_path):
    """An FCN trained in Keras itself (torch backend), exported and explained channels-last."""
    from onnxcam.demo import fcn_keras
    from onnxcam.exporters import from_keras

    data = request.getfixturevalue(data_name)
    model = fcn_keras.train(data.x_train, data.y_train, len(data.classes))
    assert fcn_keras.accuracy(model, data.x_test, data.y_test) >= 0.85
    path = from_keras(model, tmp_path / "fcn.onnx", layers=["relu3"]).path
    explainer = Explainer(path, progress=False)
    x = channels_last(data.x_test)
    result = explainer.explain(x)
    faith = timeseries_faithfulness(explainer, x, result.maps, result.targets, data.y_test)
    assert faith.area["morf"] < faith.area["random"], faith.area


def test_timeseries_demo(gunpoint_torch, demo_cache, tmp_path, monkeypatch, capsys):
    import re

    from PIL import Image

    from onnxcam.demo import DEMO_SERIES, run_timeseries_demo

    monkeypatch.setenv("ONNXCAM_CACHE", str(demo_cache))
    exported = gunpoint_torch[1].stat().st_mtime_ns
    assert run_timeseries_demo(tmp_path / "out", progress=False) == 0
    printed = capsys.readouterr().out
    found = re.search(r"Score-CAM ([0-9.]+), random ([0-9.]+)", printed)
    assert found and float(found[1]) < float(found[2])
    for i in DEMO_SERIES:
        assert np.load(tmp_path / "out" / f"gunpoint_{i}.npy").shape == (150,)
        with Image.open(tmp_path / "out" / f"gunpoint_{i}.png") as plot:
            assert plot.size == (800, 260)
    assert f"at {demo_cache / 'gunpoint-fcn.onnx'}" in printed
    assert gunpoint_torch[1].stat().st_mtime_ns == exported  # the cached export, not a new one


def test_series_plot_colours_the_band_by_the_map():
    import io

    from PIL import Image

    from onnxcam.io.pictures import series_png

    heat = np.r_[np.zeros(50), np.ones(50)]
    with Image.open(io.BytesIO(series_png(heat))) as plot:
        pixels = np.asarray(plot.convert("RGB")).astype(int)
    row = pixels[pixels.shape[0] // 2]
    band = np.nonzero(np.abs(row - 255).sum(axis=1) > 60)[0]  # coloured (not white) columns
    axes = band[band < 0.9 * len(row)]  # the colour bar lies further right
    left, right = row[axes[len(axes) // 4]], row[axes[3 * len(axes) // 4]]
    assert left[2] > left[0] + 50  # map 0: jet's blue
    assert right[0] > right[2] + 50  # map 1: jet's red
    with pytest.raises(ValueError, match=r"expected a map of shape \(T,\)"):
        series_png(np.zeros((2, 5)))


def test_csv_series(tmp_path):
    from onnxcam.errors import InputError
    from onnxcam.io import load_csv

    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savetxt(tmp_path / "uni.csv", rows, delimiter=",")
    np.testing.assert_array_equal(load_csv(tmp_path / "uni.csv", 1), rows[:, None, :])
    np.testing.assert_array_equal(load_csv(tmp_path / "uni.csv", 1, True), rows[:, :, None])
    np.savetxt(tmp_path / "multi.csv", rows, delimiter=",", header="a,b,c,d", comments="")
    np.testing.assert_array_equal(load_csv(tmp_path / "multi.csv", 3), rows[None])
    (tmp_path / "bad.csv").write_text("1,2,3\n3,x,5\n")
    with pytest.raises(InputError, match="expected a comma-separated table of numbers"):
        load_csv(tmp_path / "bad.csv", 1)


def test_cli_explains_csv_series_of_a_keras_model(gunpoint, gunpoint_fcn, tmp_path):
    import json

    from onnxcam.cli import main

    _, _, keras_path = gunpoint_fcn
    x = gunpoint.x_test[:3]
    np.savetxt(tmp_path / "series.csv", x[:, 0], delimiter=",")
    out = tmp_path / "out"
    assert (
        main(
            ["explain", str(keras_path), str(tmp_path / "series.csv"), "--out", str(out), "--quiet"]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["files"]["plot"] for e in manifest["inputs"]] == [f"series_{i}.png" for i in range(3)]
    want = Explainer(keras_path, progress=False).explain(channels_last(x)).maps
    got = np.stack([np.load(out / f"series_{i}.npy") for i in range(3)])
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("composite", COMPOSITES)
def test_lrp_relevance_same_from_torch_and_keras(composite, gunpoint, gunpoint_fcn):
    """Keras writes the convolutions' padding as Pad nodes and the BatchNorms as arithmetic:
    the folds and the z^B bounds carried through the padding give the torch twin's relevance."""
    _, torch_path, keras_path = gunpoint_fcn
    x = gunpoint.x_test[:3]
    options = {"composite": composite, "low": float(x.min()), "high": float(x.max())}
    want = Explainer(torch_path, progress=False).explain(x, "lrp", **options).relevance
    got = Explainer(keras_path, progress=False).explain(channels_last(x), "lrp", **options)
    assert got.relevance.shape == want.shape  # (N, C, T) whatever the model's layout
    error = np.abs(got.relevance - want).max() / np.abs(want).max()
    assert error < 1e-5, error
