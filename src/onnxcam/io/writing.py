"""Writing results so that nothing is ever half-written: temporary name, then rename."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from onnxcam.errors import OutputError


def prepare_dir(path: str | Path) -> Path:
    """Create `path` if needed and check that files can be written there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output directory {path}: {err.strerror}") from err
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {path} is not writable")
    return path


def write_atomic(path: Path, data: bytes) -> Path:
    """Write bytes to a temporary file beside `path`, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror}") from err
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
