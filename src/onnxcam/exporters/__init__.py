"""Framework model -> ONNX file with the chosen layers' outputs as extra graph outputs.

Torch and Keras are imported only when an exporter is called.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def from_torch(module: Any, example: Any, path: str | Path, layers: list[str] | None = None, **kw):
    """Export a torch.nn.Module; see onnxcam.exporters.torch.export for the options."""
    from onnxcam.exporters.torch import export

    return export(module, example, path, layers or [], **kw)


def from_keras(model: Any, path: str | Path, layers: list[str] | None = None, **kw):
    """Export a Keras 3 model; see onnxcam.exporters.keras.export for the options."""
    from onnxcam.exporters.keras import export

    return export(model, path, layers or [], **kw)


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


__all__ = ["ExportResult", "from_keras", "from_torch", "save_with_metadata"]
