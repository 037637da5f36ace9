"""Explanation.save: overlays, maps and manifest, written atomically."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from onnxcam import Explainer
from onnxcam.errors import OutputError


@pytest.fixture(scope="module")
def result(resnet_onnx):
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    return Explainer(resnet_onnx, progress=False).explain(x)


def test_save_writes_every_file(result, tmp_path):
    pictures = [np.full((32, 32, 3), 200, np.uint8), np.zeros((32, 32, 3), np.uint8)]
    manifest = result.save(tmp_path, images=pictures, names=["a", "b"])
    entries = json.loads(manifest.read_text())
    assert [e["name"] for e in entries["inputs"]] == ["a", "b"]
    assert entries["metadata"]["passes_run"] == result.metadata["passes_run"]
    assert entries["inputs"][0]["probability"] == pytest.approx(float(result.probabilities[0]))
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), result.maps[1])
    titled = Image.open(tmp_path / "a.png")  # a titled picture, enlarged, with a colour bar
    assert titled.height >= 320 and titled.width > titled.height
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "a.png", "b.npy", "b.png", "manifest.json"]
    result.save_maps(tmp_path / "plain", pictures, ["a", "b"])  # explain-dataset's: the blend
    grey = np.asarray(Image.open(tmp_path / "plain" / "a.png")).astype(int)
    assert grey.shape == (32, 32, 3) and not np.all(grey == 200)  # the map is blended in


def test_save_without_images_or_names(result, tmp_path):
    result.save(tmp_path)
    assert (tmp_path / "0000.png").exists() and (tmp_path / "0001.npy").exists()


def test_save_into_a_file_path_fails_cleanly(result, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output directory"):
        result.save(blocker / "out")


def test_save_checks_lengths(result, tmp_path):
    with pytest.raises(ValueError, match="one per map"):
        result.save(tmp_path, names=["only-one"])
