"""Which files INPUTS arguments name: folders, glob patterns, list files or single files.

`explain`, `evaluate` and `explain-dataset` read their inputs through this one listing, so a
folder or a glob means the same to each.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from onnxcam.errors import InputError

LIST_SUFFIXES = (".txt", ".lst")


def input_suffixes() -> set[str]:
    """Suffixes a folder is searched for: every image format Pillow reads, and .npy."""
    return {s for s, f in Image.registered_extensions().items() if f in Image.OPEN} | {".npy"}


def glob_files(spec: str) -> list[Path]:
    """Files matching a glob pattern (`**` included), found without following links to
    folders: a folder that links to its parent cannot make the walk endless."""
    parts = Path(spec).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    pattern = str(Path(*parts[fixed:])) if fixed < len(parts) else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file())


def read_list(path: Path) -> list[Path]:
    """The paths of a list file, one a line (relative to the list), `#` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: expected a text list of input paths, got binary data") from None
    except OSError as err:
        raise InputError(f"cannot read list {path}: {err.strerror}") from err
    lines = (line.strip() for line in text.splitlines())
    return [path.parent / line for line in lines if line and not line.startswith("#")]


def expand(spec: str) -> list[Path]:
    """Files named by one INPUTS argument: a folder (searched recursively for images and .npy
    files), a glob pattern, a .txt/.lst file with one path a line, or a single file."""
    path = Path(spec)
    if path.is_dir():
        suffixes = input_suffixes()
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if glob.has_magic(spec):
        return glob_files(spec)
    if not path.is_file():
        found = "not found" if not path.exists() else "not a regular file or folder"
        raise InputError(
            f"{spec}: {found} (expected a folder, a glob, a list file or an input file)"
        )
    if path.suffix.lower() in LIST_SUFFIXES:
        return read_list(path)
    return [path]


def list_inputs(specs: Sequence[str]) -> list[Path]:
    """Every file the INPUTS arguments name, in order, each once."""
    paths = list(dict.fromkeys(p.resolve() for spec in specs for p in expand(spec)))
    if not paths:
        raise InputError(f"no inputs found in {', '.join(specs)}: expected images or .npy files")
    return paths
