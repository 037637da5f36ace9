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


@pytest.fixture(scope="session")
def rapidocr_cls_bytes() -> bytes:
    """The text-orientation classifier inside the rapidocr-onnxruntime wheel (not installed)."""
    folder = Path(os.environ.get("ONNXCAM_TEST_WHEELS", ".cache/wheels"))
    wheels = sorted(folder.glob("rapidocr_onnxruntime-*.whl"))
    if not wheels:
        message = f"no rapidocr-onnxruntime wheel in {folder}: `make test` downloads it"
        if os.environ.get("ONNXCAM_REQUIRE_FIXTURES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return wheel.read(RAPIDOCR_CLS)


@pytest.fixture(scope="session")
def gunpoint():
    from onnxcam.demo import ucr

    return ucr.load("gunpoint")


@pytest.fixture(scope="session")
def basicmotions():
    from onnxcam.demo import ucr

    return ucr.load("basicmotions")


def _fcn_onnx(folder: Path, data) -> tuple[torch.nn.Module, Path, Path]:
    """A torch FCN trained on `data`, exported from torch and, with the same weights, from
    Keras (channels-last)."""
    from onnxcam.demo import fcn_keras, fcn_torch
    from onnxcam.exporters import from_keras

    model = fcn_torch.train(data.x_train, data.y_train, len(data.classes))
    torch_path = folder / f"{data.name}_torch.onnx"
    from_torch(model, torch.from_numpy(data.x_test[:2]), torch_path, layers=["block3"])
    keras_path = folder / f"{data.name}_keras.onnx"
    from_keras(fcn_keras.from_torch(model, data.length), keras_path, layers=["relu3"])
    return model, torch_path, keras_path


@pytest.fixture(scope="session")
def gunpoint_fcn(tmp_path_factory, gunpoint):
    """(torch FCN, its ONNX export, the Keras copy's ONNX export) trained on GunPoint."""
    return _fcn_onnx(tmp_path_factory.mktemp("gunpoint"), gunpoint)


@pytest.fixture(scope="session")
def basicmotions_fcn(tmp_path_factory, basicmotions):
    return _fcn_onnx(tmp_path_factory.mktemp("basicmotions"), basicmotions)
