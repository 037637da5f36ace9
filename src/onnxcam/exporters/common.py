"""What both exporters produce: the result, and the ONNX file written with onnxcam's metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from onnxcam.engine import metadata
from onnxcam.engine.layout import check_layout
from onnxcam.io import write_atomic


@dataclass(frozen=True)
class ExportResult:
    """Where the ONNX file went and which tensor holds each requested layer's output."""

    path: Path
    layers: dict[str, str] = field(default_factory=dict)
    max_abs_diff: float | None = None


def save_with_metadata(
    model: onnx.ModelProto,
    path: str | Path,
    layers: dict[str, str],
    preprocess: dict | None,
    layout: str | None = None,
) -> Path:
    """Record the layer map (and preprocessing, input layout) in the model's metadata and write
    it atomically."""
    entries = {metadata.LAYER_MAP_KEY: json.dumps(layers)}
    if preprocess is not None:
        entries[metadata.PREPROCESS_KEY] = json.dumps(preprocess)
    if layout is not None:
        entries[metadata.LAYOUT_KEY] = check_layout(layout)
    metadata.with_entries(model, entries)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, model.SerializeToString())
