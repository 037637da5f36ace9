"""Arrays already preprocessed: .npy files and .csv tables of series."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onnxcam.errors import InputError

NPY_MAGIC = b"\x93NUMPY"


def load_array(path: str | Path) -> np.ndarray:
    """A preprocessed .npy array: one input (C, *S) or a batch (N, C, *S), as float32.

    The file is mapped, not read, until its header has been checked against its size, so a
    header that claims a huge array costs nothing."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(NPY_MAGIC))
    except OSError as err:
        raise InputError(f"cannot read array {path}: {err.strerror}") from err
    if start != NPY_MAGIC:
        raise InputError(
            f"{path}: expected a .npy array file (starting with \\x93NUMPY), got a file "
            f"starting with bytes {start.hex(' ') or 'none'}"
        )
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        array = np.array(mapped)
    except MemoryError:
        raise InputError(f"cannot read array {path}: it does not fit in memory") from None
    except Exception as err:  # a malformed header raises ValueError, SyntaxError, TokenError, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read array {path}: {reason}") from None
    if array.dtype.kind != "f":
        raise InputError(
            f"{path}: expected a float array of preprocessed inputs, got {array.dtype}"
        )
    return array.astype(np.float32, copy=False)


def load_csv(path: str | Path, channels: int, channels_last: bool = False) -> np.ndarray:
    """A .csv table of numbers (an optional header row is skipped) as a batch of series.

    For a univariate model each row is one series (the UCR archive's layout). For a model with
    C > 1 variables the table is one input in the model's layout: (C, T), one variable per row,
    or (T, C) for a channels-last model. Returns (N, C, T), or (N, T, C) for channels-last.
    """
    table, problem = None, "no numbers"
    for header in (0, 1):
        try:
            table = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=header, dtype=np.float32)
            break
        except ValueError as err:
            problem = err
        except OSError as err:
            raise InputError(f"cannot read {path}: {err}") from err
    if table is None or table.size == 0:
        raise InputError(f"{path}: expected a comma-separated table of numbers ({problem})")
    if channels == 1:
        return table[:, :, None] if channels_last else table[:, None, :]
    return table[None]
