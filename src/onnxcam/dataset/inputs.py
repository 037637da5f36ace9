"""Which files a dataset holds: a folder, a glob or a list file, and a unique name for each."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from onnxcam.io import unique_names
from onnxcam.io.listing import list_inputs


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


def dataset_items(specs: Sequence[str]) -> list[Item]:
    """The dataset's inputs in order, each once, named by its path relative to the folder all
    inputs share, without suffix (`val/cat/1.jpg` -> `cat/1`)."""
    paths = list_inputs(specs)
    root = Path(os.path.commonpath([p.parent for p in paths]))
    names = unique_names([p.relative_to(root).with_suffix("").as_posix() for p in paths])
    return [stamped(i, p, name) for i, (p, name) in enumerate(zip(paths, names, strict=True))]
