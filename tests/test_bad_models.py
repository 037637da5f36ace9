"""Models that are broken or hostile: each ends in one clear ModelError (or works), never in a
traceback, a wrong answer or a read outside the model's folder."""

from __future__ import annotations

import os
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcam import Explainer
from onnxcam.engine import graph
from onnxcam.errors import ModelError


def conv_model(weights_name: str = "w") -> onnx.ModelProto:
    """x (N, 2, 6, 6) -> Conv(4 filters) -> ReLU -> GAP -> Flatten -> Gemm (3 classes)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), weights_name),
        numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", weights_name], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["a"]),
        helper.make_node("GlobalAveragePool", ["a"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1),
    ]
    g = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def save_external(folder, location="weights.bin"):
    """The model saved with its weights in one external file; returns the .onnx path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.onnx"
    onnx.save_model(
        conv_model(), path, save_as_external_data=True, location=location, size_threshold=0
    )
    return path


def set_location(path, location: str) -> None:
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


X = np.random.default_rng(1).standard_normal((2, 2, 6, 6)).astype(np.float32)


def test_external_weights_in_the_folder_are_read(tmp_path):
    path = save_external(tmp_path / "model")
    got = Explainer(path, progress=False).explain(X, method="grad-cam").logits
    want = Explainer(conv_model(), progress=False).explain(X, method="grad-cam").logits
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("absolute", "expected a file name inside the model's folder"),
        ("parent", "expected a file name inside the model's folder"),
        ("missing", "cannot open"),
        ("symlink", "a symbolic link"),
        ("hardlink", "with 2 links"),
        ("linked_folder", "is a link or not a folder"),
        ("truncated", "expected .* bytes"),
        ("offset", "expected .* bytes"),
    ],
)
def test_external_data_outside_or_broken_is_refused(tmp_path, make, message):
    path = save_external(tmp_path / "model")
    weights = tmp_path / "model" / "weights.bin"
    outside = tmp_path / "secret.bin"
    shutil.copy(weights, outside)
    if make == "absolute":
        set_location(path, str(outside))
    elif make == "parent":
        set_location(path, "../secret.bin")
    elif make == "missing":
        weights.unlink()
    elif make == "symlink":
        weights.unlink()
        weights.symlink_to(outside)
    elif make == "hardlink":
        weights.unlink()
        os.link(outside, weights)
    elif make == "linked_folder":
        (tmp_path / "elsewhere").mkdir()
        shutil.copy(outside, tmp_path / "elsewhere" / "weights.bin")
        (tmp_path / "model" / "sub").symlink_to(tmp_path / "elsewhere")
        set_location(path, "sub/weights.bin")
    elif make == "truncated":
        weights.write_bytes(weights.read_bytes()[:40])
    elif make == "offset":
        model = onnx.load(path, load_external_data=False)
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "offset":
                entry.value = str(10**9)
        path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match=message):
        graph.load(path)


def test_external_data_given_as_bytes_is_refused(tmp_path):
    path = save_external(tmp_path / "model")
    with pytest.raises(ModelError, match=r"load it from its \.onnx path"):
        graph.load(path.read_bytes())
