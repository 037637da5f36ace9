"""Reading a model: parse, load its external weights (checked, graph/external.py), drop
weights listed as inputs, check.

A missing, unreadable, truncated or invalid file is a ModelError that names what is wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path

import onnx

from onnxcam.engine.graph.external import external, load_external_data
from onnxcam.errors import ModelError


def load(source: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Read and check an ONNX model; a missing, unreadable or truncated file is a ModelError."""
    if isinstance(source, onnx.ModelProto):
        model = copy.deepcopy(source)
    elif isinstance(source, bytes):
        model = _parse(source, "<bytes>")
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelError(f"ONNX model not found: {path} (expected a .onnx file)")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ModelError(f"cannot read ONNX model {path}: {err.strerror}") from err
        model = _parse(data, str(path))
        load_external_data(model, path.parent)
    if external(model):
        raise ModelError(
            "the model keeps weights in external data files: load it from its .onnx path, "
            "so that they are read from its folder"
        )
    _drop_initializer_inputs(model)
    try:
        onnx.checker.check_model(model)
    except Exception as err:  # the checker raises ValidationError, ValueError, RecursionError
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"invalid ONNX model: {first}") from err
    if not model.graph.output:
        raise ModelError("invalid ONNX model: the graph has no outputs")
    return model


def _drop_initializer_inputs(model: onnx.ModelProto) -> None:
    """Old exporters list weights as graph inputs too; ORT then treats them as overridable and
    some of its fusions fail once inner tensors are exposed. Weights are not inputs here."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in weights]
    if len(inputs) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(inputs)


def _parse(data: bytes, label: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as err:  # protobuf raises its own DecodeError types
        raise ModelError(
            f"cannot parse {label} as an ONNX model ({len(data)} bytes): the file is truncated "
            "or not ONNX"
        ) from err
    if not model.graph.node:
        raise ModelError(f"{label} holds no ONNX graph ({len(data)} bytes): truncated or not ONNX")
    return model
