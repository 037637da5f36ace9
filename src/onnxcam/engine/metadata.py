"""What onnxcam's exporters record in a model's `metadata_props`, read back in one place.

`onnxcam.layers`: module path -> tensor name (so `--layer layer4` works); `onnxcam.preprocess`:
the image preprocessing the model was trained with; `onnxcam.layout`: channels_first or
channels_last (Keras).
"""

from __future__ import annotations

import json

import onnx

LAYER_MAP_KEY = "onnxcam.layers"
PREPROCESS_KEY = "onnxcam.preprocess"
LAYOUT_KEY = "onnxcam.layout"


def entries(model: onnx.ModelProto) -> dict[str, str]:
    """Every metadata entry of the model (the last one wins where a key repeats)."""
    return {prop.key: prop.value for prop in model.metadata_props}


def stored_layers(model: onnx.ModelProto) -> dict[str, str]:
    """The module-path -> tensor map that onnxcam's exporters store, else {}."""
    text = entries(model).get(LAYER_MAP_KEY)
    return json.loads(text) if text else {}


def stored_preprocess(model: onnx.ModelProto) -> dict | None:
    """The preprocessing recorded at export, if any."""
    text = entries(model).get(PREPROCESS_KEY)
    return json.loads(text) if text else None


def stored_layout(model: onnx.ModelProto) -> str | None:
    """The input layout recorded at export, if any."""
    return entries(model).get(LAYOUT_KEY)


def with_entries(model: onnx.ModelProto, new: dict[str, str]) -> None:
    """Set metadata entries in place, keeping the others."""
    merged = {**entries(model), **new}
    del model.metadata_props[:]
    for key, value in merged.items():
        model.metadata_props.add(key=key, value=value)
