"""onnxcam: class activation maps for any ONNX classifier, through batched ONNX Runtime.

The public names are imported on first use, so that `import onnxcam` (and the command line's
start) costs nothing until they are needed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> (module, attribute); no attribute: the name is that module.
_PUBLIC = {
    "ContextSaliency": ("onnxcam.engine.context_saliency", "ContextSaliency"),
    "Explainer": ("onnxcam.api", "Explainer"),
    "Explanation": ("onnxcam.engine.explanation", "Explanation"),
    "LayerInfo": ("onnxcam.engine.graph", "LayerInfo"),
    "OnnxcamError": ("onnxcam.errors", "OnnxcamError"),
    "context_saliency": ("onnxcam.engine.context_saliency", "context_saliency"),
    "dataset": ("onnxcam.dataset", None),
    "explain": ("onnxcam.api", "explain"),
    "exporters": ("onnxcam.exporters", None),
    "io": ("onnxcam.io", None),
    "methods": ("onnxcam.engine.methods", "methods"),
    "metrics": ("onnxcam.evaluation.metrics", None),
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'onnxcam' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names only (not this module's own imports)."""
    return sorted([*_PUBLIC, "__version__"])
