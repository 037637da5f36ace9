"""Framework model -> ONNX file with the chosen layers' outputs as extra graph outputs.

Torch and Keras are imported only when an exporter is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onnxcam.exporters.common import ExportResult, save_with_metadata


def from_torch(module: Any, example: Any, path: str | Path, layers: list[str] | None = None, **kw):
    """Export a torch.nn.Module; see onnxcam.exporters.torch.export for the options."""
    from onnxcam.exporters.torch import export

    return export(module, example, path, layers or [], **kw)


def from_keras(model: Any, path: str | Path, layers: list[str] | None = None, **kw):
    """Export a Keras 3 model; see onnxcam.exporters.keras.export for the options."""
    from onnxcam.exporters.keras import export

    return export(model, path, layers or [], **kw)


__all__ = ["ExportResult", "from_keras", "from_torch", "save_with_metadata"]
