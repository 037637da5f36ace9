"""Keras 3 export: layer outputs equal Keras's own for Conv1D and Conv2D models (Sequential and
functional, with BatchNormalization), channels-last layout in the metadata and explained without
transposing, clear errors; the tf2onnx route where tensorflow is installed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from onnxcam import Explainer
from onnxcam.engine.graph import expose
from onnxcam.engine.layout import channels_first
from onnxcam.engine.metadata import LAYOUT_KEY
from onnxcam.engine.runner import open_session
from onnxcam.errors import ExportError, InputError
from onnxcam.exporters import from_keras
from onnxcam.exporters.keras import keras_module
from onnxcam.kernels.resize import resize_reference

keras = keras_module()


def randomise_batchnorm(model, seed: int = 0) -> None:
    """Non-trivial moving statistics, so that BatchNormalization is not an identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.get_weights()[0].shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape).astype(np.float32),
                    rng.normal(0, 0.2, shape).astype(np.float32),
                    rng.normal(0, 0.5, shape).astype(np.float32),
                    rng.uniform(0.5, 2.0, shape).astype(np.float32),
                ]
            )


def conv1d_sequential():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((40, 3)),
            keras.layers.Conv1D(8, 5, padding="same", name="conv_a"),
            keras.layers.BatchNormalization(name="bn_a"),
            keras.layers.ReLU(name="relu_a"),
            keras.layers.Conv1D(6, 3, padding="same", activation="relu", name="conv_b"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4, name="head"),
        ]
    )
    randomise_batchnorm(model)
    return model


def conv2d_functional():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="branch")(x)
    x = keras.layers.Add(name="residual")([x, y])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="top")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(x))
    randomise_batchnorm(model, 1)
    return model


def keras_outputs(model, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    outputs = [model.outputs[0], *[model.get_layer(n).output for n in names]]
    probe = keras.Model(model.inputs, outputs)
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in probe([x])]


@pytest.mark.parametrize(
    ("build", "layers", "shape"),
    [
        (conv1d_sequential, ["conv_a", "bn_a", "relu_a", "conv_b"], (5, 40, 3)),
        (conv2d_functional, ["stem_bn", "residual", "top"], (5, 16, 16, 3)),
    ],
)
def test_layer_outputs_equal_keras(build, layers, shape, tmp_path):
    model = build()
    result = from_keras(model, tmp_path / "m.onnx", layers=layers)
    assert result.layers == {n: n for n in layers} and result.max_abs_diff <= 1e-4
    proto = onnx.load(str(result.path))
    assert [o.name for o in proto.graph.output] == ["logits", *layers]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta[LAYOUT_KEY] == "channels_last"
    assert json.loads(meta["onnxcam.layers"]) == {n: n for n in layers}
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    got = open_session(proto).run(["logits", *layers], {proto.graph.input[0].name: x})
    for name, a, b in zip(["logits", *layers], got, keras_outputs(model, x, layers), strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4, name


def test_channels_first_rewrite_keeps_the_model(tmp_path):
    model = conv2d_functional()
    path = from_keras(model, tmp_path / "m.onnx", layers=["top"]).path
    rewritten, twin = channels_first(onnx.load(str(path)), "top")
    x = np.random.default_rng(3).standard_normal((2, 16, 16, 3)).astype(np.float32)
    logits, top = keras_outputs(model, x, ["top"])
    got_logits, got_top = open_session(expose(rewritten, [twin])).run(
        ["logits", twin], {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))}
    )
    np.testing.assert_allclose(got_logits, logits, atol=1e-4)
    np.testing.assert_allclose(got_top, top.transpose(0, 3, 1, 2), atol=1e-4)


def test_score_cam_of_an_nhwc_model_equals_a_keras_reference(tmp_path):
    """Score-CAM (paper profile) written with Keras forwards and the NumPy resize reference."""
    model = conv2d_functional()
    path = from_keras(model, tmp_path / "m.onnx", layers=["top"]).path
    x = np.random.default_rng(4).standard_normal((2, 16, 16, 3)).astype(np.float32)
    result = Explainer(path, layer="top", progress=False).explain(x)
    logits, acts = keras_outputs(model, x, ["top"])
    for n in range(len(x)):
        cls = logits[n].argmax()
        a = acts[n].transpose(2, 0, 1).astype(np.float64)  # (K, h, w)
        masks = resize_reference(a, (16, 16)).astype(np.float64)
        lo = masks.min(axis=(1, 2), keepdims=True)
        span = masks.max(axis=(1, 2), keepdims=True) - lo
        masks = (masks - lo) / (span + 1e-8)
        constant = np.ptp(a.reshape(len(a), -1), axis=1) == 0
        masked = (x[n][None] * masks[..., None]).astype(np.float32)
        scores = np.asarray(model.predict(masked, verbose=0))[:, cls].astype(np.float64)
        scores[constant] = -np.inf
        w = np.exp(scores - scores.max())
        w /= w.sum()
        cam = np.maximum(np.tensordot(w, a, axes=1), 0)
        up = resize_reference(cam[None], (16, 16))[0].astype(np.float64)
        want = (up - up.min()) / (up.max() - up.min() + 1e-8)
        np.testing.assert_allclose(result.maps[n], want, atol=1e-4)


def test_channels_last_input_errors_name_the_layout(tmp_path):
    path = from_keras(conv1d_sequential(), tmp_path / "m.onnx", layers=["conv_b"]).path
    explainer = Explainer(path, progress=False)
    assert explainer.input_shape[1:] == (3, 40)
    with pytest.raises(InputError, match=r"\(N, T, C\)"):
        explainer.explain(np.zeros((2, 40), np.float32))
    with pytest.raises(InputError, match=r"got \(2, 3, 40\)"):
        explainer.explain(np.zeros((2, 3, 40), np.float32))
    with pytest.raises(ValueError, match="layout must be one of"):
        Explainer(path, input_layout="nhwc")


def test_unknown_layer_lists_the_layers(tmp_path):
    with pytest.raises(ExportError, match=r"layer 'conv_z' not found.*conv_a, bn_a"):
        from_keras(conv1d_sequential(), tmp_path / "m.onnx", layers=["conv_z"])
    with pytest.raises(ExportError, match="expected a built Keras model"):
        from_keras(object(), tmp_path / "m.onnx", layers=[])


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("tf2onnx") is None,
    reason="the tf2onnx route needs tensorflow and tf2onnx (optional, not in the dev extra)",
)
def test_tf2onnx_route_on_the_tensorflow_backend(tmp_path):
    """Keras on its tensorflow backend exports through tf2onnx; same names and numbers."""
    script = (
        "import numpy as np, onnx, sys\n"
        "sys.path[:0] = [sys.argv[2]]\n"
        "from test_exporters_keras import conv1d_sequential, keras_outputs\n"
        "from onnxcam.engine.runner import open_session\n"
        "from onnxcam.exporters import from_keras\n"
        "model = conv1d_sequential()\n"
        "r = from_keras(model, sys.argv[1], layers=['relu_a'])\n"
        "x = np.random.default_rng(0).standard_normal((3, 40, 3)).astype(np.float32)\n"
        "p = onnx.load(sys.argv[1])\n"
        "got = open_session(p).run(['logits', 'relu_a'], {p.graph.input[0].name: x})\n"
        "want = keras_outputs(model, x, ['relu_a'])\n"
        "print(max(float(np.abs(a - b).max()) for a, b in zip(got, want)))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "NUMBA_THREADING_LAYER": "workqueue"}
    tests = os.path.dirname(__file__)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.onnx"), tests],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(done.stdout.strip().splitlines()[-1]) <= 1e-4
