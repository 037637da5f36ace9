"""The one place that imports ONNX Runtime, and says clearly when its install is broken.

`onnxruntime` (CPU) and `onnxruntime-gpu` both install the module `onnxruntime` and overwrite
each other's files; onnxcam offers them as the extras `cpu` and `gpu` and checks at import that
exactly one runtime distribution is present.
"""

from __future__ import annotations

import warnings
from importlib import metadata

RUNTIME_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
    "onnxruntime-silicon",
)


def installed_runtimes() -> list[str]:
    """Names of the ONNX Runtime distributions installed in this environment."""
    found = []
    for name in RUNTIME_DISTRIBUTIONS:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def check_runtime_install(found: list[str]) -> None:
    """Raise if no runtime is installed, warn if several are (they break each other)."""
    if not found:
        raise ImportError(
            "onnxcam needs ONNX Runtime, and none is installed: "
            "pip install 'onnxcam[cpu]' (CPU) or 'onnxcam[gpu]' (CUDA), not both"
        )
    if len(found) > 1:
        warnings.warn(
            f"several ONNX Runtime packages are installed ({', '.join(found)}); they overwrite "
            "each other's files and the result is unpredictable. Keep one: "
            f"pip uninstall -y {' '.join(found)} && pip install 'onnxcam[cpu]' (or [gpu])",
            RuntimeWarning,
            stacklevel=3,
        )


check_runtime_install(installed_runtimes())

import onnxruntime  # noqa: E402

__all__ = ["onnxruntime"]
