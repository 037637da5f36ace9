"""Weights kept beside the model file (ONNX external data), read with every location checked.

A location is taken only if it names a regular file inside the model's own folder, reached
without a symbolic link anywhere on the way and with one hard link: weights cannot be read
from outside the folder the user pointed at. Every problem (a location outside the folder, a
missing or linked file, a short read, an offset past the end) is a ModelError naming the
tensor and the location.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxcam.errors import ModelError


def tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    """Every tensor of a graph that can hold external data: initializers and tensor attributes,
    subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                yield attribute.t
            yield from attribute.tensors
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from tensors(subgraph)


def external(model: onnx.ModelProto) -> list[TensorProto]:
    return [t for t in tensors(model.graph) if t.data_location == TensorProto.EXTERNAL]


def _checked_file(folder: Path, location: str, tensor: str) -> int:
    """An open file descriptor for `location` under `folder`, after the checks above."""
    where = f"tensor {tensor!r} keeps its data in {location!r}"
    relative = PurePosixPath(location.replace("\\", "/"))
    if not location or relative.is_absolute() or ".." in relative.parts:
        raise ModelError(f"{where}: expected a file name inside the model's folder {folder}")
    path = folder
    for part in relative.parts[:-1]:
        path = path / part
        try:
            info = os.lstat(path)
        except OSError as err:
            raise ModelError(f"{where}: folder {path} cannot be read ({err.strerror})") from err
        if not stat.S_ISDIR(info.st_mode):
            raise ModelError(f"{where}: {path} is a link or not a folder; expected a real folder")
    path = path / relative.parts[-1]
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as err:
        reason = "a symbolic link" if os.path.islink(path) else err.strerror
        raise ModelError(f"{where}: cannot open {path} ({reason})") from err
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        kind = "a regular file" if stat.S_ISREG(info.st_mode) else "not a regular file"
        raise ModelError(
            f"{where}: {path} is {kind} with {info.st_nlink} links; expected a regular file "
            "with one link"
        )
    return fd


def _expected_bytes(tensor: TensorProto) -> int | None:
    if tensor.data_type in (TensorProto.STRING, TensorProto.UNDEFINED):
        return None
    try:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return None
    return int(np.prod(tensor.dims, dtype=np.int64)) * itemsize


def _entries(tensor: TensorProto) -> tuple[str, int, int | None]:
    entries = {entry.key: entry.value for entry in tensor.external_data}
    try:
        offset = int(entries.get("offset", 0))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError:
        raise ModelError(
            f"tensor {tensor.name!r}: external data offset/length are not numbers"
        ) from None
    if offset < 0 or (length is not None and length < 0):
        raise ModelError(f"tensor {tensor.name!r}: negative external data offset or length")
    return entries.get("location", ""), offset, length


def load_external_data(model: onnx.ModelProto, folder: Path) -> None:
    """Read every external tensor of `model` from files in `folder` into the model, in place."""
    folder = Path(os.path.realpath(folder))
    for tensor in external(model):
        location, offset, length = _entries(tensor)
        expected = _expected_bytes(tensor)
        want = length if length is not None else expected
        fd = _checked_file(folder, location, tensor.name)
        with os.fdopen(fd, "rb") as handle:
            handle.seek(offset)
            data = handle.read(want if want is not None else -1)
        if (want is not None and len(data) != want) or (
            expected is not None and len(data) != expected
        ):
            raise ModelError(
                f"tensor {tensor.name!r}: expected {expected if expected is not None else want} "
                f"bytes at offset {offset} of {location!r}, got {len(data)}"
            )
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
