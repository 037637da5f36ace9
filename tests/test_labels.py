"""Class names: where they come from (a file, the model, ImageNet's for 1000 classes) and that
titles, console lines and manifests name a class the same way."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from toy_models import conv_gap_linear

from onnxcam import Explainer
from onnxcam.cli import main
from onnxcam.engine.explanation import Explanation
from onnxcam.engine.metadata import stored_labels
from onnxcam.errors import ArgumentError
from onnxcam.exporters import from_torch
from onnxcam.io.labels import imagenet_labels, read_labels


def with_metadata(entries: dict[str, str]) -> onnx.ModelProto:
    model = onnx.ModelProto()
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    return model


def test_recorded_names_onnxcam_and_foreign_keys():
    assert stored_labels(with_metadata({"onnxcam.labels": '["cat", "dog"]'})) == ["cat", "dog"]
    ultralytics = with_metadata({"names": "{0: 'person', 1: 'bicycle'}"})
    assert stored_labels(ultralytics) == ["person", "bicycle"]
    assert stored_labels(with_metadata({"names": "{1: 'a', 2: 'b'}"})) is None  # not 0..n-1
    assert stored_labels(with_metadata({"labels": "not a list"})) is None
    assert stored_labels(with_metadata({})) is None


def test_labels_files(tmp_path):
    (tmp_path / "a.txt").write_text("# names\ncat\n\ndog\n")
    (tmp_path / "b.json").write_text('["cat", "dog"]')
    assert read_labels(tmp_path / "a.txt") == read_labels(tmp_path / "b.json") == ["cat", "dog"]
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(Exception, match="expected a JSON list of strings"):
        read_labels(tmp_path / "c.json")


def test_imagenet_names_for_a_model_of_1000_classes(tmp_path):
    names = imagenet_labels()
    assert names is not None and len(names) == 1000 and names[282] == "tiger cat"
    model = conv_gap_linear(3, 4, 1000, kernel=3)
    from_torch(model, torch.randn(2, 3, 16, 16), tmp_path / "m.onnx", ["1"])
    explainer = Explainer(tmp_path / "m.onnx", progress=False)
    result = explainer.explain(np.zeros((1, 3, 16, 16), np.float32), "grad-cam")
    assert result.class_names == names
    target = int(result.targets[0])
    assert result.class_text(0) == f"{names[target]} (class {target})"


def test_given_labels_must_name_every_class(resnet_onnx):
    explainer = Explainer(resnet_onnx, labels=["a", "b"], progress=False)
    with pytest.raises(ArgumentError, match=r"expected 10 class names .* got 2"):
        explainer.class_names(10)


def test_one_name_for_a_class_in_titles_console_and_manifest(resnet_onnx, tmp_path, capsys):
    names = [f"kind {i}" for i in range(10)]
    (tmp_path / "labels.txt").write_text("\n".join(names))
    Image.new("RGB", (32, 32), (120, 30, 200)).save(tmp_path / "a.png")
    args = ["explain", str(resnet_onnx), str(tmp_path / "a.png"), "--quiet"]
    assert (
        main([*args, "--labels", str(tmp_path / "labels.txt"), "--out", str(tmp_path / "o")]) == 0
    )
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("a: "))
    entry = json.loads((tmp_path / "o" / "manifest.json").read_text())["inputs"][0]
    target = entry["target"]
    assert entry["class_name"] == names[target]
    assert line.startswith(f"a: kind {target} (class {target}) (p=")
    # the picture: a titled figure with a colour bar, wider with the input beside it
    plain = Image.open(tmp_path / "o" / "a.png")
    assert plain.width > 32 and plain.height > 32
    assert main([*args, "--panel", "--out", str(tmp_path / "p")]) == 0
    panel = Image.open(tmp_path / "p" / "a.png")
    assert panel.height == plain.height and panel.width > plain.width + 250  # a 320 px panel


def test_titles_name_the_class_as_the_console_does():
    result = Explanation(
        np.zeros((2, 4)),
        np.zeros((2, 4)),
        None,
        np.array([0, 1]),
        np.array([[2.0, 0], [0, 2]]),
        "score-cam",
        "block3",
        class_names=["label 1", "label 2"],
    )
    assert result.class_text(0) == "label 1 (class 0)"
    assert result.title(1) == "label 2 (class 1), p=0.881; score-cam, layer block3"
    without = Explanation(
        np.zeros((1, 4)), np.zeros((1, 4)), None, np.array([1]), np.array([[0.0, 0]]), "rise", None
    )
    assert without.title(0) == "class 1, p=0.500; rise"


def test_the_demo_fcn_records_the_ucr_labels_so_explain_shows_them(gunpoint_torch, gunpoint):
    from onnxcam.api import Explainer

    _, path = gunpoint_torch
    explainer = Explainer(path, progress=False)
    assert explainer.class_names(2) == ["label 1", "label 2"]
    result = explainer.explain(gunpoint.x_test[:2])
    assert result.class_text(0).startswith("label ")
