"""Which files a dataset holds: a folder, a glob or a list file, and a unique name for each."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from onnxcam.errors import InputError
from onnxcam.io import unique_names

LIST_SUFFIXES = (".txt", ".lst")


@dataclass(frozen=True)
class Item:
    """One input of the dataset: its position, its file, the name its outputs get, and the
    file's size and modification time when listed (what makes a result this file's)."""

    index: int
    path: str
    name: str
    size: int = -1
    mtime_ns: int = -1


def stamped(index: int, path: Path, name: str) -> Item:
    """An Item with its file's size and modification time (-1 where it cannot be read)."""
    try:
        info = path.stat()
    except OSError:
        return Item(index, str(path), name)
    return Item(index, str(path), name, info.st_size, info.st_mtime_ns)


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
        raise InputError(f"{spec}: expected a folder, a glob, a list file or an input file")
    if path.suffix.lower() in LIST_SUFFIXES:
        return read_list(path)
    return [path]


def dataset_items(specs: Sequence[str]) -> list[Item]:
    """The dataset's inputs in order, each once, named by its path relative to the folder all
    inputs share, without suffix (`val/cat/1.jpg` -> `cat/1`)."""
    paths = list(dict.fromkeys(p.resolve() for spec in specs for p in expand(spec)))
    if not paths:
        raise InputError(f"no inputs found in {', '.join(specs)}: expected images or .npy files")
    root = Path(os.path.commonpath([p.parent for p in paths]))
    names = unique_names([p.relative_to(root).with_suffix("").as_posix() for p in paths])
    return [stamped(i, p, name) for i, (p, name) in enumerate(zip(paths, names, strict=True))]
