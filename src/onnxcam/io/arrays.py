"""Arrays already preprocessed: .npy files and .csv tables of series."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onnxcam.errors import InputError


def load_array(path: str | Path) -> np.ndarray:
    """A preprocessed .npy array: one input (C, *S) or a batch (N, C, *S), as float32."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read array {path}: {err}") from err
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
