"""Inputs: image files through a preprocessing preset, or .npy / .csv arrays already
preprocessed (series and other non-image inputs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from onnxcam.errors import InputError


@dataclass(frozen=True)
class Preprocess:
    """Image -> model input: scale to cover the input size / crop_fraction, centre-crop,
    divide by 255, subtract mean and divide by std per channel."""

    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    crop_fraction: float = 0.875

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "crop_fraction": self.crop_fraction}


PRESETS = {
    "imagenet": Preprocess(),
    "inception": Preprocess((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "unit": Preprocess((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


def preset(name: str) -> Preprocess:
    if name not in PRESETS:
        raise InputError(f"unknown preprocessing {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


def choose_preprocess(name: str, stored: dict | None) -> Preprocess:
    """A preset by name; `auto` takes what the exporter stored in the model, else imagenet."""
    if name == "auto":
        return Preprocess(**stored) if stored else PRESETS["imagenet"]
    return preset(name)


def input_size(text: str | None, shape: Sequence | None) -> tuple[int, ...]:
    """Spatial size for images: `HxW` text if given, else the model's (224 for symbolic axes)."""
    if text:
        try:
            return tuple(int(v) for v in text.lower().split("x"))
        except ValueError:
            raise InputError(f"--size expects HxW such as 224x224, got {text!r}") from None
    spatial = tuple(shape[2:]) if shape is not None else (None, None)
    return tuple(d if isinstance(d, int) else 224 for d in spatial)


def input_channels(shape: Sequence | None) -> int:
    """Channels the model takes (3 when the axis is symbolic)."""
    return shape[1] if shape is not None and isinstance(shape[1], int) else 3


def fit_image(image: Image.Image, size: tuple[int, int], crop_fraction: float) -> Image.Image:
    """Resize so the image covers size / crop_fraction, then take the centre (H, W) crop."""
    height, width = size
    scale = max(height / image.height, width / image.width) / crop_fraction
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.BILINEAR,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_image(
    path: str | Path, size: tuple[int, int], preprocess: Preprocess, channels: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W) float32 model input and the (H, W, 3) uint8 picture it was made from."""
    if channels not in (1, 3):
        raise InputError(f"the model takes {channels} input channels: give .npy arrays, not images")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened if opened.mode == "RGB" else opened.convert("RGB")
            picture = np.asarray(fit_image(image, size, preprocess.crop_fraction))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise InputError(f"cannot read image {path}: {err}") from err
    # Channels first before the arithmetic, each channel's constants as scalars: the same
    # float32 operations as on (H, W, C) pixels, on contiguous planes.
    pixels = picture.transpose(2, 0, 1).astype(np.float32, order="C")
    pixels /= 255.0
    if channels == 1:
        pixels = pixels.mean(axis=0, keepdims=True)
    mean = np.asarray(preprocess.mean[:channels], np.float32)[:, None, None]
    std = np.asarray(preprocess.std[:channels], np.float32)[:, None, None]
    pixels -= mean
    pixels /= std
    return pixels, picture


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


def load_inputs(
    paths: Sequence[str | Path],
    size: tuple[int, ...],
    preprocess: Preprocess,
    channels: int,
    channels_last: bool = False,
) -> tuple[np.ndarray, list[np.ndarray | None], list[str]]:
    """Stack images and .npy/.csv files into one batch in the model's layout: inputs, pictures
    (None for arrays), names.

    `size` is the model's spatial input size, used for images (which need two axes).
    """
    inputs, pictures, names = [], [], []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if suffix in (".npy", ".csv"):
            if suffix == ".csv":
                batch = load_csv(path, channels, channels_last)
            else:
                array = load_array(path)
                batch = array if array.ndim == len(size) + 2 else array[None]
            inputs.extend(batch)
            pictures.extend([None] * len(batch))
            names.extend(
                [path.stem] if len(batch) == 1 else [f"{path.stem}_{i}" for i in range(len(batch))]
            )
        else:
            if len(size) != 2:
                raise InputError(
                    f"{path}: the model takes {len(size)}-D inputs; give .npy or .csv arrays"
                )
            x, picture = load_image(path, size, preprocess, channels)
            inputs.append(x.transpose(1, 2, 0) if channels_last else x)
            pictures.append(picture)
            names.append(path.stem)
    shapes = {a.shape for a in inputs}
    if len(shapes) > 1:
        raise InputError(f"inputs differ in shape: {sorted(shapes)}; expected one shape for all")
    return np.stack(inputs), pictures, unique_names(names)


def unique_names(names: list[str]) -> list[str]:
    """Names made unique in order: the second `a` becomes `a_1`, the third `a_2`."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count}")
    return out
