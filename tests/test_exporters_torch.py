"""from_torch: exposed layers equal torch forward hooks, dynamic batch, both exporters."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from toy_models import hook_outputs, tiny_resnet

from onnxcam import Explainer
from onnxcam.engine.metadata import LAYER_MAP_KEY
from onnxcam.engine.runner import open_session
from onnxcam.errors import ExportError
from onnxcam.exporters import from_torch


def ort_outputs(path, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    return open_session(onnx.load(str(path))).run(names, {"input": x})


@pytest.mark.parametrize("batch", [1, 5])
def test_resnet_layers_equal_forward_hooks(resnet_model, resnet_onnx, batch):
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
    want = hook_outputs(resnet_model, x, ["layer2", "layer3"])
    logits, layer2, layer3 = ort_outputs(resnet_onnx, x.numpy(), ["logits", "layer2", "layer3"])
    with torch.no_grad():
        np.testing.assert_allclose(logits, resnet_model(x).numpy(), atol=1e-4)
    assert np.abs(layer2 - want["layer2"].numpy()).max() <= 1e-4
    assert np.abs(layer3 - want["layer3"].numpy()).max() <= 1e-4


def test_module_inside_sequential(vgg_model, vgg_onnx):
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    want = hook_outputs(vgg_model, x, ["features.29"])["features.29"].numpy()
    (got,) = ort_outputs(vgg_onnx, x.numpy(), ["features.29"])
    assert got.shape == (3, 8, 4, 4)
    assert np.abs(got - want).max() <= 1e-4


def test_export_result_and_metadata(tmp_path, resnet_model):
    result = from_torch(
        resnet_model, torch.randn(1, 3, 32, 32), tmp_path / "m.onnx", layers=["layer1"]
    )
    assert result.path == tmp_path / "m.onnx" and result.layers == {"layer1": "layer1"}
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert '"layer1": "layer1"' in meta[LAYER_MAP_KEY]
    assert not list(tmp_path.glob(".*tmp"))  # written under a temporary name, then renamed
    assert Explainer(result.path, layer="layer1").layer == "layer1"


def test_legacy_torchscript_exporter(tmp_path):
    model = tiny_resnet(seed=4)
    result = from_torch(
        model, torch.randn(2, 3, 32, 32), tmp_path / "legacy.onnx", ["layer2"], dynamo=False
    )
    assert result.max_abs_diff < 1e-4
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    want = hook_outputs(model, x, ["layer2"])["layer2"].numpy()
    (got,) = ort_outputs(result.path, x.numpy(), ["layer2"])
    assert np.abs(got - want).max() <= 1e-4
    assert model.training is False  # the user's mode is restored


def test_unknown_module_path(tmp_path, resnet_model):
    with pytest.raises(ExportError, match="layer7"):
        from_torch(resnet_model, torch.randn(1, 3, 32, 32), tmp_path / "m.onnx", layers=["layer7"])
    assert not (tmp_path / "m.onnx").exists()


def test_bad_example(tmp_path, resnet_model):
    with pytest.raises(ExportError, match="example"):
        from_torch(resnet_model, [1, 2, 3], tmp_path / "m.onnx")
