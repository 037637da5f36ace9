"""What onnxcam's exporters record in a model's `metadata_props`, read back in one place and
checked, since any file can carry any text there.

`onnxcam.layers`: module path -> tensor name (so `--layer layer4` works); `onnxcam.preprocess`:
the image preprocessing the model was trained with; `onnxcam.layout`: channels_first or
channels_last (Keras); `onnxcam.labels`: the class names, a JSON list (models from elsewhere
often carry them as `names` or `labels`, a list or an index -> name mapping, JSON or Python
literal). A layer map that is not a map of names is ignored with a warning (it
only adds aliases); a preprocessing or layout that does not parse or does not fit is a
ModelError naming the key, since using it would give wrong inputs.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import onnx

from onnxcam.errors import ModelError

LAYER_MAP_KEY = "onnxcam.layers"
PREPROCESS_KEY = "onnxcam.preprocess"
LAYOUT_KEY = "onnxcam.layout"
LABELS_KEY = "onnxcam.labels"
#: Keys under which models from elsewhere record class names (ultralytics: `names`).
FOREIGN_LABEL_KEYS = ("names", "labels", "classes")
LAYOUTS = ("channels_first", "channels_last")


def entries(model: onnx.ModelProto) -> dict[str, str]:
    """Every metadata entry of the model (the last one wins where a key repeats)."""
    return {prop.key: prop.value for prop in model.metadata_props}


def _json(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ModelError(f"metadata {key!r} is not valid JSON: {text[:60]!r}") from None


def stored_layers(model: onnx.ModelProto) -> dict[str, str]:
    """The module-path -> tensor map that onnxcam's exporters store, else {}."""
    text = entries(model).get(LAYER_MAP_KEY)
    if not text:
        return {}
    try:
        layers = _json(LAYER_MAP_KEY, text)
    except ModelError as err:
        layers = err
    if not isinstance(layers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in layers.items()
    ):
        warnings.warn(
            f"metadata {LAYER_MAP_KEY!r} is not a map of module paths to tensor names; "
            "module paths will not be accepted as layer names",
            RuntimeWarning,
            stacklevel=2,
        )
        return {}
    return layers


def _finite_numbers(value: Any, low_open: float | None = None) -> bool:
    return (
        isinstance(value, list)
        and 1 <= len(value) <= 4
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
        and (low_open is None or all(v > low_open for v in value))
    )


def stored_preprocess(model: onnx.ModelProto) -> dict | None:
    """The preprocessing recorded at export, checked: mean and std of 1 to 4 finite numbers
    (std > 0), crop_fraction in (0, 1]."""
    text = entries(model).get(PREPROCESS_KEY)
    if not text:
        return None
    value = _json(PREPROCESS_KEY, text)
    problem = None
    if not isinstance(value, dict) or set(value) - {"mean", "std", "crop_fraction"}:
        problem = "expected an object with mean, std and crop_fraction"
    elif not _finite_numbers(value.get("mean")):
        problem = "mean must be a list of 1 to 4 finite numbers"
    elif not _finite_numbers(value.get("std"), low_open=0.0):
        problem = "std must be a list of 1 to 4 finite numbers > 0"
    else:
        crop = value.get("crop_fraction", 0.875)
        if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0 < crop <= 1:
            problem = f"crop_fraction must be a number in (0, 1], got {crop!r}"
    if problem:
        raise ModelError(
            f"metadata {PREPROCESS_KEY!r}: {problem}; pass --preprocess (preprocess=...) to "
            "choose one"
        )
    return value


def stored_layout(model: onnx.ModelProto) -> str | None:
    """The input layout recorded at export, if any."""
    layout = entries(model).get(LAYOUT_KEY)
    if layout is not None and layout not in LAYOUTS:
        raise ModelError(
            f"metadata {LAYOUT_KEY!r} must be one of {', '.join(LAYOUTS)}, got {layout[:40]!r}"
        )
    return layout


def with_entries(model: onnx.ModelProto, new: dict[str, str]) -> None:
    """Set metadata entries in place, keeping the others."""
    merged = {**entries(model), **new}
    del model.metadata_props[:]
    for key, value in merged.items():
        model.metadata_props.add(key=key, value=value)


def stored_labels(model: onnx.ModelProto) -> list[str] | None:
    """The class names the model records (onnxcam's key, else a foreign one), or None. A list
    of strings, or a mapping of 0..n-1 to strings; anything else is ignored (names are only
    for display)."""
    import ast

    found = entries(model)
    for key in (LABELS_KEY, *FOREIGN_LABEL_KEYS):
        text = found.get(key)
        if not text:
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
                continue
        if isinstance(value, dict):
            keys = sorted(value, key=lambda k: int(k) if str(k).isdigit() else -1)
            if [str(k) for k in keys] != [str(i) for i in range(len(keys))]:
                continue
            value = [value[k] for k in keys]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    return None
