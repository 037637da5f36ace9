"""The real pretrained EfficientNet-Lite0 on a real photo: export fidelity and the demo job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from toy_models import hook_outputs

from onnxcam import Explainer
from onnxcam.demo import run_demo
from onnxcam.engine.runner import open_session

pytestmark = pytest.mark.slow
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_efficientnet_layers_equal_forward_hooks(lite0_model, lite0_onnx):
    lite0 = lite0_model
    paths = ["_blocks.15", "_conv_head", "_bn1"]
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    want = hook_outputs(lite0, x, paths)
    import onnx

    session = open_session(onnx.load(str(lite0_onnx)))
    got = dict(
        zip(["logits", *paths], session.run(["logits", *paths], {"input": x.numpy()}), strict=True)
    )
    with torch.no_grad():
        logits = lite0(x).numpy()
    assert np.abs(got["logits"] - logits).max() <= 1e-4
    for p in paths:
        assert np.abs(got[p] - want[p].numpy()).max() <= 1e-4, p
    assert Explainer(lite0_onnx, layer="_conv_head").layer == "_conv_head"


def test_demo_explains_the_cat(
    lite0_onnx, gunpoint_torch, demo_cache, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ONNXCAM_CACHE", str(demo_cache))
    exported = lite0_onnx.stat().st_mtime_ns
    assert run_demo(tmp_path / "out", progress=False) == 0
    printed = capsys.readouterr().out
    assert "predicted: tiger cat (class 282" in printed
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (entry,) = manifest["inputs"]
    assert entry["target"] in CAT_CLASSES and manifest["metadata"]["channels"] == 1280
    heat = np.load(tmp_path / "out" / "chelsea.npy")
    assert heat.shape == (224, 224) and abs(heat.max() - 1) < 1e-5
    # the cat fills the centre crop: the map's mass is not on the border
    assert heat[56:168, 56:168].mean() > heat.mean()
    assert f"at {demo_cache / 'efficientnet-lite0.onnx'}" in printed
    assert lite0_onnx.stat().st_mtime_ns == exported  # the cached export, not a new one


def test_demo_export_records_its_preprocessing(lite0_onnx):
    import onnx

    from onnxcam.demo import DEMO_PREPROCESS
    from onnxcam.engine.metadata import stored_preprocess

    assert stored_preprocess(onnx.load(str(lite0_onnx))) == DEMO_PREPROCESS.to_dict()
