"""`onnxcam evaluate` and the evaluation behind it: values equal the metric functions, the
bootstrap interval holds the mean, the files are written, and bad names are refused early."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from skimage import data

from onnxcam import Explainer, metrics
from onnxcam.cli import main
from onnxcam.evaluation import bootstrap_interval, evaluate


def test_bootstrap_interval_against_a_direct_resampling():
    values = np.random.default_rng(1).random(13)
    low, high = bootstrap_interval(values, resamples=2000, seed=5)
    rng = np.random.default_rng(5)
    means = values[rng.integers(0, 13, (2000, 13))].mean(axis=1)
    assert (low, high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert low < values.mean() < high
    assert bootstrap_interval(np.array([0.3])) == (0.3, 0.3)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        bootstrap_interval(np.array([]))


@pytest.fixture(scope="module")
def explainer(resnet_onnx):
    return Explainer(resnet_onnx, layer="layer3", progress=False)


def test_evaluate_values_equal_the_metric_functions(explainer, images):
    result = evaluate(
        explainer,
        images,
        ["eigen-cam", "occlusion"],
        ["deletion", "avg-drop"],
        method_options={"occlusion": {"patch": 8, "stride": 8}},
        metric_options={"deletion": {"step": 64}},
        resamples=500,
    )
    assert result.metrics == ["deletion", "avg-drop", "win"]
    maps = explainer.explain(images, "eigen-cam")
    expected = metrics.deletion(explainer, images, maps.maps, maps.targets, step=64)
    np.testing.assert_allclose(result.values["eigen-cam", "deletion"], expected)
    drops = metrics.average_drop(explainer, images, maps.maps, maps.targets)
    np.testing.assert_allclose(result.values["eigen-cam", "avg-drop"], 100 * drops)
    wins = result.values["eigen-cam", "win"] + result.values["occlusion", "win"]
    assert np.all(wins <= 100) and result.ties == pytest.approx(100 * np.mean(wins == 0))
    assert result.curves["eigen-cam", "deletion"].scores.shape == (3, 17)  # 1024 / 64 + 1
    for row in result.rows:
        assert row.low <= row.mean <= row.high and row.n == 3
    assert {r.metric: r.higher_is_better for r in result.rows} == {
        "deletion": False,
        "avg-drop": False,
        "win": True,
    }


def test_evaluate_refuses_unknown_names_before_any_work(explainer, images):
    with pytest.raises(ValueError, match="unknown method"):
        evaluate(explainer, images, ["score-cam", "no-such-cam"], ["deletion"])
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        evaluate(explainer, images, ["score-cam"], ["auc"])
    with pytest.raises(ValueError, match="not evaluated"):
        evaluate(explainer, images, ["score-cam"], ["deletion"], {"rise": {"n_masks": 2}})
    with pytest.raises(ValueError, match="bad options for metric 'deletion'"):
        evaluate(explainer, images, ["eigen-cam"], ["deletion"], None, {"deletion": {"bad": 1}})


@pytest.fixture
def photos(tmp_path):
    paths = []
    for name in ("coffee", "chelsea", "rocket"):
        path = tmp_path / f"{name}.png"
        Image.fromarray(getattr(data, name)()).resize((48, 48)).save(path)
        paths.append(str(path))
    return paths


def test_cli_writes_table_values_and_plots(resnet_onnx, photos, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "evaluate",
            str(resnet_onnx),
            *photos,
            "--methods",
            "eigen-cam,occlusion",
            "--metrics",
            "deletion,insertion,avg-drop,increase,road",
            "--option",
            "occlusion:patch=8",
            "--metric-option",
            "deletion:step=128",
            "--metric-option",
            "road:fractions=[0.2,0.6]",
            "--resamples",
            "300",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""  # --quiet: no progress bars
    names = {p.name for p in out.iterdir()}
    assert names == {
        "summary.csv",
        "summary.md",
        "values.csv",
        "curves-eigen-cam.png",
        "curves-occlusion.png",
        "deletion.png",
        "insertion.png",
        "report.html",
    }
    with open(out / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["method", "metric", "mean", "ci_low", "ci_high", "n", "better"]
    assert len(rows) == 2 * 6  # 5 metrics and win, for each method
    for row in rows:
        assert float(row["ci_low"]) <= float(row["mean"]) <= float(row["ci_high"])
    with open(out / "values.csv") as handle:
        values = list(csv.DictReader(handle))
    assert {v["input"] for v in values} == {"coffee", "chelsea", "rocket"}
    for row in rows:
        mine = [
            float(v["value"])
            for v in values
            if (v["method"], v["metric"]) == (row["method"], row["metric"])
        ]
        assert float(row["mean"]) == pytest.approx(np.mean(mine))
    table = (out / "summary.md").read_text()
    assert table.splitlines()[0].startswith("| method | deletion ↓ | insertion ↑ | avg-drop ↓")
    assert "| eigen-cam |" in table and "300 resamples" in table
    assert table in captured.out
    plot = Image.open(out / "deletion.png")
    assert plot.format == "PNG" and plot.size == (500, 360)
    assert not list(out.glob(".*tmp"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--methods", "score-cam,nope"], "unknown method(s) ['nope']"),
        (["--metrics", "deletion,auc"], "unknown metric 'auc'"),
        (["--metric-option", "step=3"], "metric options need a metric"),
        (["--option", "rise:n_masks=2"], "options given for method(s) ['rise']"),
        (["--resamples", "0"], "--resamples must be a positive integer"),
    ],
)
def test_cli_errors(resnet_onnx, photos, tmp_path, capsys, arguments, message):
    code = main(["evaluate", str(resnet_onnx), photos[0], "--out", str(tmp_path / "r"), *arguments])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("onnxcam: error:") and message in err


def test_cli_progress_bar_by_default(resnet_onnx, photos, tmp_path, capsys):
    arguments = ["--methods", "eigen-cam", "--metrics", "deletion", "--out", str(tmp_path / "r")]
    assert main(["evaluate", str(resnet_onnx), photos[0], *arguments]) == 0
    err = capsys.readouterr().err
    assert "methods" in err and "deletion" in err


def test_a_registered_metric_joins_evaluate(explainer, images):
    from onnxcam.evaluation.metrics import registry

    @metrics.register_metric("map-mean", True, "mean of the map")
    def map_mean(explainer, x, maps, classes, scale=1.0):
        return metrics.MetricValues(scale * maps.reshape(len(maps), -1).mean(axis=1))

    try:
        assert "map-mean" in metrics.metric_names()
        result = evaluate(
            explainer, images, ["eigen-cam"], ["map-mean"], None, {"map-mean": {"scale": 2.0}}
        )
        maps = explainer.explain(images, "eigen-cam").maps
        np.testing.assert_allclose(result.values["eigen-cam", "map-mean"], 2 * maps.mean((1, 2)))
    finally:
        registry._METRICS.pop("map-mean")
