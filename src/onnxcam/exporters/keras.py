"""Keras 3 -> ONNX with the outputs of named layers as extra graph outputs.

Keras runs on the torch backend unless KERAS_BACKEND says otherwise before keras is first
imported; `model.export(format="onnx")` then goes through torch.onnx, or through tf2onnx on the
tensorflow backend. Keras's export loses layer names, so the model is first rebuilt as a
functional model whose extra outputs are the requested layers, and the graph outputs are renamed
to the layer names afterwards. Keras layers are channels-last by default: the layout is stored
in the model's metadata and the Explainer transposes for it (docs/design.md).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx

from onnxcam.engine.layout import CHANNELS_FIRST, CHANNELS_LAST
from onnxcam.errors import ExportError
from onnxcam.exporters.common import ExportResult, save_with_metadata


def keras_module() -> ModuleType:
    """keras, on the torch backend unless KERAS_BACKEND was set before its first import."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return keras


def _layer_outputs(model: Any, names: list[str]) -> list[Any]:
    known = [layer.name for layer in model.layers]
    outputs = []
    for name in names:
        if name not in known:
            raise ExportError(
                f"layer {name!r} not found in Keras model {model.name!r}; "
                f"layers: {', '.join(known)}"
            )
        outputs.append(model.get_layer(name).output)
    return outputs


def _layout(model: Any, layers: list[str]) -> str:
    """channels_last unless every spatial layer named says channels_first."""
    formats = {getattr(model.get_layer(n), "data_format", None) for n in layers} - {None}
    if not formats:
        formats = {getattr(layer, "data_format", None) for layer in model.layers} - {None}
    return CHANNELS_FIRST if formats == {"channels_first"} else CHANNELS_LAST


def export(
    model: Any,
    path: str | Path,
    layers: list[str],
    output_name: str = "logits",
    preprocess: dict | None = None,
    opset: int | None = None,
    verify: bool = True,
) -> ExportResult:
    """Export a built Keras model with a dynamic batch axis; `layers` are Keras layer names.

    With verify, ONNX Runtime runs a random batch and its outputs are compared with Keras's
    (max_abs_diff in the result).
    """
    keras = keras_module()
    if not isinstance(model, keras.Model) or len(model.inputs or []) != 1:
        raise ExportError(f"expected a built Keras model with one input, got {model!r}")
    if len(model.outputs) != 1:
        raise ExportError(f"expected a Keras model with one output, got {len(model.outputs)}")
    wrapped = keras.Model(model.inputs, [model.outputs[0], *_layer_outputs(model, layers)])
    example = _example(model)
    expected = [np.asarray(keras.ops.convert_to_numpy(t)) for t in wrapped([example])]
    spec = keras.InputSpec(shape=(None, *model.inputs[0].shape[1:]), name="input")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = Path(tmp) / "model.onnx"
        try:
            with redirect_stdout(StringIO()):
                wrapped.export(
                    str(target),
                    format="onnx",
                    input_signature=[spec],
                    opset_version=opset,
                    verbose=False,
                )
        except Exception as err:  # exporters raise many types; report one clear line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(f"Keras ONNX export failed: {first}") from err
        onnx_model = onnx.load(str(target))
    names = [output_name, *layers]
    _rename_outputs(onnx_model, names)
    layout = _layout(model, layers)
    result_path = save_with_metadata(onnx_model, path, {n: n for n in layers}, preprocess, layout)
    diff = _verify(onnx_model, example, names, expected) if verify else None
    return ExportResult(result_path, {n: n for n in layers}, diff)


def _example(model: Any) -> np.ndarray:
    shape = tuple(2 if d is None else d for d in model.inputs[0].shape)
    if any(not isinstance(d, int) for d in shape):
        raise ExportError(f"expected a Keras input with a known shape, got {shape}")
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _rename_outputs(model: onnx.ModelProto, names: list[str]) -> None:
    """Give the graph outputs, in order, the names `names` (everywhere they are used)."""
    graph = model.graph
    if len(graph.output) != len(names):
        raise ExportError(
            f"expected {len(names)} graph outputs, the export has {len(graph.output)}"
        )
    mapping = {out.name: new for out, new in zip(graph.output, names, strict=True)}
    taken = {o for node in graph.node for o in node.output} - set(mapping)
    clash = [n for n in names if n in taken]
    for name in clash:  # a tensor inside the graph already carries a wanted name
        mapping.setdefault(name, f"{name}__renamed")
    for node in graph.node:
        node.input[:] = [mapping.get(i, i) for i in node.input]
        node.output[:] = [mapping.get(o, o) for o in node.output]
    for value in [*graph.output, *graph.value_info]:
        value.name = mapping.get(value.name, value.name)


def _verify(model: onnx.ModelProto, x: np.ndarray, names: list[str], expected) -> float:
    from onnxcam.engine.graph import model_input
    from onnxcam.engine.runner import open_session

    got = open_session(model).run(names, {model_input(model).name: x})
    return max(float(np.abs(a - b).max()) for a, b in zip(got, expected, strict=True))
