"""Writing results so that nothing is ever half-written: temporary name, then rename."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

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
    """Write bytes to a temporary file beside `path`, then rename it into place; on any failure
    or interruption the temporary file is removed, so `path` is whole or untouched."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def plain(value: Any) -> Any:
    """`value` with NumPy scalars and arrays as Python ones and non-finite floats as None, so
    that it is valid JSON (which has no NaN or Infinity)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value: Any, **options: Any) -> str:
    """Strict JSON of `value` (see `plain`); options go to json.dumps (indent, sort_keys)."""
    return json.dumps(plain(value), allow_nan=False, **options)
