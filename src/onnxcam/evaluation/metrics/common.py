"""What every metric shares: input checks and the fractions of positions it perturbs."""

from __future__ import annotations

import numpy as np

from onnxcam.errors import ArgumentError


def check_inputs(x: np.ndarray, maps: np.ndarray, classes: np.ndarray) -> None:
    """Maps (N, *S) and classes (N,) must match inputs (N, C, *S)."""
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise ArgumentError(
            f"expected maps of shape {(x.shape[0], *x.shape[2:])}, got {maps.shape}"
        )
    if classes.shape != (x.shape[0],):
        raise ArgumentError(f"expected {x.shape[0]} classes, got shape {classes.shape}")


def fraction_list(fractions) -> np.ndarray:
    """Fractions in [0, 1) as a float array, with a clear error for anything else."""
    values = np.asarray(fractions, np.float64).ravel()
    if len(values) == 0 or not np.all((values >= 0) & (values < 1)):
        raise ArgumentError(f"fractions must be non-empty and in [0, 1), got {list(values)}")
    return values
