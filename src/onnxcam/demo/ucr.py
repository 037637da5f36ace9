"""GunPoint (univariate) and BasicMotions (multivariate) from the copies shipped inside sktime.

Nothing is downloaded: sktime carries both data sets in its wheel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onnxcam.errors import ArgumentError

LOADERS = {"gunpoint": "load_gunpoint", "basicmotions": "load_basic_motions"}


@dataclass(frozen=True)
class SeriesData:
    """Train and test splits as float32 (N, C, T), z-normalised per series and variable."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def length(self) -> int:
        return self.x_train.shape[2]


def znormalize(x: np.ndarray) -> np.ndarray:
    """Each series and variable to mean 0 and standard deviation 1 (constant ones to 0)."""
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return ((x - mean) / np.where(std > 0, std, 1)).astype(np.float32)


def load(name: str) -> SeriesData:
    """`gunpoint` or `basicmotions` with integer labels (indices into `classes`)."""
    key = name.lower()
    if key not in LOADERS:
        raise ArgumentError(f"unknown data set {name!r}: expected one of {', '.join(LOADERS)}")
    from sktime import datasets

    loader = getattr(datasets, LOADERS[key])
    x_train, y_train = loader(split="train", return_type="numpy3D")
    x_test, y_test = loader(split="test", return_type="numpy3D")
    classes = tuple(sorted(set(y_train) | set(y_test)))
    index = {c: i for i, c in enumerate(classes)}
    return SeriesData(
        key,
        znormalize(x_train),
        np.array([index[c] for c in y_train], np.int64),
        znormalize(x_test),
        np.array([index[c] for c in y_test], np.int64),
        tuple(str(c) for c in classes),
    )
