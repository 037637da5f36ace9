"""The command line: listings, explanations written to disk, one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data

from onnxcam.cli import main


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(path)
    return path


def test_layers_marks_auto(resnet_onnx, capsys):
    assert main(["layers", str(resnet_onnx)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["tensor", "op", "shape", "[module]"]
    assert lines[1].startswith("* layer3 ") and "(batch, 24, 4, 4)" in lines[1]
    assert sum(line.startswith("*") for line in lines) == 2  # the pick and the legend
    assert any(line.startswith("  layer2 ") for line in lines)


def test_a_module_path_that_layers_shows_is_a_layer(resnet_onnx, capsys):
    from onnxcam import Explainer
    from onnxcam.engine import graph

    layers = graph.list_layers(graph.load(resnet_onnx))
    in_order = [info.name for info in reversed(layers) if not info.auto]
    assert main(["layers", str(resnet_onnx)]) == 0
    shown = capsys.readouterr().out
    for path in ("layer3.bn2", "layer1.relu", "stem.3"):
        assert f"[{path}]" in shown
        inside = [info.name for info in layers if info.scope == path]
        last = max(inside, key=in_order.index)  # the module's output: its last candidate
        assert Explainer(resnet_onnx, layer=path, progress=False).layer == last
    assert Explainer(resnet_onnx, layer="layer1.relu", progress=False).layer == "relu_2"


def test_explain_images_and_arrays(resnet_onnx, photo, tmp_path, capsys):
    array = tmp_path / "series.npy"
    np.save(array, np.random.default_rng(0).standard_normal((3, 32, 32)).astype(np.float32))
    out = tmp_path / "out"
    code = main(
        [
            "explain",
            str(resnet_onnx),
            str(photo),
            str(array),
            "--layer",
            "layer2",
            "--target",
            "4",
            "--batch-size",
            "7",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "coffee: class 4" in captured.out and "series: class 4" in captured.out
    assert captured.err == ""  # --quiet: no progress bar
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "score-cam" and manifest["layer"] == "layer2"
    assert [e["target"] for e in manifest["inputs"]] == [4, 4]
    overlay = np.asarray(Image.open(out / "coffee.png"))
    assert overlay.shape[0] >= 320 and overlay.shape[1] > overlay.shape[0]  # titled, a colour bar
    heat = np.load(out / "series.npy")
    assert heat.shape == (32, 32) and heat.min() >= 0 and heat.max() <= 1
    assert not list(out.glob(".*tmp"))


def test_progress_bar_by_default(resnet_onnx, photo, tmp_path, capsys):
    assert main(["explain", str(resnet_onnx), str(photo), "--out", str(tmp_path / "o")]) == 0
    assert "score-cam" in capsys.readouterr().err


def test_method_options(resnet_onnx, photo, tmp_path):
    assert (
        main(
            [
                "explain",
                str(resnet_onnx),
                str(photo),
                "--option",
                "profile=pgc",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "manifest.json").read_text())["metadata"]["profile"] == "pgc"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "{tmp}/missing.onnx", "{photo}"], "ONNX model not found"),
        (["explain", "{model}", "{tmp}/bad.png"], "cannot read image"),
        (["explain", "{model}", "{photo}", "--target", "99"], "class index 99 out of range"),
        (
            ["explain", "{model}", "{photo}", "--layer", "nope"],
            "unknown layer 'nope'; candidates: layer3",
        ),
        (
            ["explain", "{model}", "{photo}", "--out", "{tmp}/file.txt"],
            "cannot create output directory",
        ),
        (["explain", "{model}", "{photo}", "--provider", "tpu"], "unknown provider 'tpu'"),
        (["explain", "{model}", "{tmp}/ints.npy"], "expected a float array"),
        (["layers", "{tmp}/bad.png"], "truncated or not ONNX"),
    ],
)
def test_errors_are_one_line(args, message, resnet_onnx, photo, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n not really")
    (tmp_path / "file.txt").write_text("a file where a directory should be")
    np.save(tmp_path / "ints.npy", np.zeros((3, 32, 32), np.int32))
    filled = [a.format(tmp=tmp_path, photo=photo, model=resnet_onnx) for a in args]
    assert main([*filled, "--quiet"] if args[0] == "explain" else filled) == 2
    err = capsys.readouterr().err
    assert err.startswith("onnxcam: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_entry_point_exits_non_zero_without_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "onnxcam.cli", "layers", str(tmp_path / "none.onnx")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"onnxcam: error: ONNX model not found: {tmp_path / 'none.onnx'} (expected a .onnx file)"
    )


def test_a_preset_replacing_the_recorded_preprocessing_says_so(resnet_model, tmp_path, capsys):
    import torch

    from onnxcam.exporters import from_torch

    model = tmp_path / "m.onnx"
    recorded = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "crop_fraction": 0.875}
    from_torch(resnet_model, torch.randn(2, 3, 32, 32), model, ["layer3"], preprocess=recorded)
    Image.new("RGB", (40, 40), (200, 10, 10)).save(tmp_path / "a.png")
    base = ["explain", str(model), str(tmp_path / "a.png"), "--quiet", "--out", str(tmp_path)]
    assert main([*base, "--preprocess", "imagenet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("notice: --preprocess imagenet replaces")
    assert "mean [0.5, 0.5, 0.5]" in err[0]
    for same in ("auto", "inception"):  # inception is what was recorded
        assert main([*base, "--preprocess", same]) == 0
        assert capsys.readouterr().err == ""
    dataset = ["explain-dataset", str(model), str(tmp_path / "a.png"), "--quiet"]
    assert main([*dataset, "--out", str(tmp_path / "ds"), "--preprocess", "unit"]) == 0
    assert capsys.readouterr().err.startswith("notice: --preprocess unit replaces")


@pytest.mark.parametrize(
    ("method", "layer"),
    [("rise", None), ("occlusion", None), ("lrp", None), ("sr-map", None), ("grad-cam", "layer3")],
)
def test_only_methods_that_use_a_layer_name_one(
    resnet_onnx, photo, tmp_path, capsys, method, layer
):
    args = ["explain", str(resnet_onnx), str(photo), "--method", method, "--quiet"]
    options = ["--option", "n_masks=50"] if method == "rise" else []
    assert main([*args, *options, "--out", str(tmp_path)]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith(f"{method} at layer {layer} on " if layer else f"{method} on ")
    assert json.loads((tmp_path / "manifest.json").read_text())["layer"] == layer
