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
    """One input of the dataset: its position, its file and the name its outputs get."""

    index: int
    path: str
    name: str


def input_suffixes() -> set[str]:
    """Suffixes a folder is searched for: every image format Pillow reads, and .npy."""
    return {s for s, f in Image.registered_extensions().items() if f in Image.OPEN} | {".npy"}


def expand(spec: str) -> list[Path]:
    """Files named by one INPUTS argument: a folder (searched recursively for images and .npy
    files), a glob pattern, a .txt/.lst file with one path a line, or a single file."""
    path = Path(spec)
    if path.is_dir():
        suffixes = input_suffixes()
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if glob.has_magic(spec):
        return sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    if not path.is_file():
        raise InputError(f"{spec}: expected a folder, a glob, a list file or an input file")
    if path.suffix.lower() in LIST_SUFFIXES:
        lines = (line.strip() for line in path.read_text().splitlines())
        return [path.parent / line for line in lines if line and not line.startswith("#")]
    return [path]


def dataset_items(specs: Sequence[str]) -> list[Item]:
    """The dataset's inputs in order, each once, named by its path relative to the folder all
    inputs share, without suffix (`val/cat/1.jpg` -> `cat/1`)."""
    paths = list(dict.fromkeys(p.resolve() for spec in specs for p in expand(spec)))
    if not paths:
        raise InputError(f"no inputs found in {', '.join(specs)}: expected images or .npy files")
    root = Path(os.path.commonpath([p.parent for p in paths]))
    names = unique_names([p.relative_to(root).with_suffix("").as_posix() for p in paths])
    return [Item(i, str(p), name) for i, (p, name) in enumerate(zip(paths, names, strict=True))]
