"""Where the demo's exported models are kept: $ONNXCAM_CACHE, else ~/.cache/onnxcam."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("ONNXCAM_CACHE", Path.home() / ".cache" / "onnxcam"))
