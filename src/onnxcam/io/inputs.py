"""A batch from input files: images through a preprocessing preset, arrays as they are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onnxcam.errors import InputError
from onnxcam.io.arrays import load_array, load_csv
from onnxcam.io.images import MAX_INPUT_PIXELS, load_image
from onnxcam.io.preprocess import Preprocess


@dataclass(frozen=True)
class InputFormat:
    """What a model takes, for reading files: spatial size of images, input channels, whether
    the model is channels-last, and the preprocessing of images."""

    size: tuple[int, ...]
    channels: int = 3
    channels_last: bool = False
    preprocess: Preprocess = field(default_factory=Preprocess)

    @classmethod
    def for_model(
        cls,
        shape: Sequence | None,
        channels_last: bool,
        preprocess: Preprocess,
        size: str | None = None,
    ) -> InputFormat:
        """The format of a model whose input is `shape` (N, C, *S) channels-first; `size` is
        the user's HxW for images (default: the model's, 224 where it is symbolic)."""
        return cls(input_size(size, shape), input_channels(shape), channels_last, preprocess)


def input_size(text: str | None, shape: Sequence | None) -> tuple[int, ...]:
    """Spatial size for images: `HxW` text if given, else the model's (224 for symbolic axes)."""
    spatial = tuple(shape[2:]) if shape is not None else (None, None)
    if not text:
        return tuple(d if isinstance(d, int) else 224 for d in spatial)
    if len(spatial) != 2:
        raise InputError(
            f"--size HxW is for image models; this model takes inputs (N, C, "
            f"{', '.join(str(d) for d in spatial)}), which are read as they are"
        )
    try:
        size = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1 or size[0] * size[1] > MAX_INPUT_PIXELS:
        raise InputError(f"--size expects HxW such as 224x224, got {text!r}")
    return size


def input_channels(shape: Sequence | None) -> int:
    """Channels the model takes (3 when the axis is symbolic)."""
    return shape[1] if shape is not None and isinstance(shape[1], int) else 3


def load_inputs(
    paths: Sequence[str | Path], fmt: InputFormat
) -> tuple[np.ndarray, list[np.ndarray | None], list[str]]:
    """Stack images and .npy/.csv files into one batch in the model's layout: inputs, pictures
    (None for arrays), names."""
    inputs, pictures, names = [], [], []
    size, channels, last = fmt.size, fmt.channels, fmt.channels_last
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if suffix in (".npy", ".csv"):
            if suffix == ".csv":
                batch = load_csv(path, channels, last)
            else:
                array = load_array(path)
                batch = array if array.ndim == len(size) + 2 else array[None]
            if len(batch) == 0:
                raise InputError(f"{path}: expected at least one input, got shape {batch.shape}")
            inputs.extend(batch)
            pictures.extend([None] * len(batch))
            names.extend(
                [path.stem] if len(batch) == 1 else [f"{path.stem}_{i}" for i in range(len(batch))]
            )
        else:
            if len(size) != 2:
                axes = ", ".join(str(d) for d in ((*size, channels) if last else (channels, *size)))
                raise InputError(
                    f"{path}: expected a .npy or .csv array of shape ({axes}), got an image: "
                    f"the model takes {len(size)}-D inputs, not pictures"
                )
            x, picture = load_image(path, size, fmt.preprocess, channels)
            inputs.append(x.transpose(1, 2, 0) if last else x)
            pictures.append(picture)
            names.append(path.stem)
    shapes = {a.shape for a in inputs}
    if len(shapes) > 1:
        raise InputError(f"inputs differ in shape: {sorted(shapes)}; expected one shape for all")
    return np.stack(inputs), pictures, unique_names(names)


def unique_names(names: list[str]) -> list[str]:
    """Names made unique in order: the second `a` becomes `a_1`, the third `a_2`, skipping any
    name that another input has or that was made before (`x`, `x`, `x_1` -> x, x_2, x_1)."""
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        unique, count = name, 0
        while unique in seen or (unique != name and unique in taken):
            count += 1
            unique = f"{name}_{count}"
        seen.add(unique)
        out.append(unique)
    return out
