"""A batch from input files: images through a preprocessing preset, arrays as they are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onnxcam.errors import InputError
from onnxcam.io.arrays import load_array, load_csv
from onnxcam.io.images import MAX_INPUT_PIXELS, RESIZE_MODES, load_image
from onnxcam.io.preprocess import Preprocess

#: Where an input size came from, as InputFormat.origin records it.
FROM_OPTION, FROM_MODEL = "option", "model"


@dataclass(frozen=True)
class InputFormat:
    """What a model takes, for reading files: spatial size of images (None on an axis the
    model leaves free: images keep their own), input channels, whether the model is
    channels-last, the preprocessing of images, how an image reaches an imposed size
    (`resize`: crop, fit or stretch), and where the size came from (`origin`)."""

    size: tuple[int | None, ...]
    channels: int = 3
    channels_last: bool = False
    preprocess: Preprocess = field(default_factory=Preprocess)
    resize: str = "crop"
    origin: str = FROM_MODEL

    @classmethod
    def for_model(
        cls,
        shape: Sequence | None,
        channels_last: bool,
        preprocess: Preprocess,
        size: str | None = None,
        resize: str | None = None,
        crop_recorded: bool = False,
    ) -> InputFormat:
        """The format of a model whose input is `shape` (N, C, *S) channels-first; `size` is
        the user's HxW for images (default: the model's fixed axes; free axes follow each
        image). `resize` defaults to crop where the model records ImageNet-style preprocessing
        (`crop_recorded`), else fit: a crop drops part of an image the model was not trained to
        see cropped."""
        if resize is not None and resize not in RESIZE_MODES:
            raise InputError(f"--resize expects one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        mode = resize or ("crop" if crop_recorded else "fit")
        origin = FROM_OPTION if size else FROM_MODEL
        spatial = input_size(size, shape)
        return cls(spatial, input_channels(shape), channels_last, preprocess, mode, origin)

    def size_note(self, used: Sequence[int], images: int = 1) -> str:
        """One line saying which image size the model gets and why."""
        text = "x".join(map(str, used))
        if self.origin == FROM_OPTION:
            return f"input size {text}: from --size (images reach it by --resize {self.resize})"
        free = [axis for axis, d in zip("HW", self.size, strict=True) if d is None]
        if not free:
            return (
                f"input size {text}: fixed by the model (images reach it by --resize {self.resize})"
            )
        whose = "the first image's own" if images > 1 else "the image's own"
        others = f"; the others reach it by --resize {self.resize}" if images > 1 else ""
        if len(free) == 2:
            return (
                f"input size {text}: {whose} (the model leaves H and W free{others}; "
                "--size HxW imposes one)"
            )
        fixed = next(f"{a}={d}" for a, d in zip("HW", self.size, strict=True) if d is not None)
        return (
            f"input size {text}: the model fixes {fixed} and leaves {free[0]} free, so {whose} "
            f"aspect ratio gives it{others} (--size HxW imposes one)"
        )


def input_size(text: str | None, shape: Sequence | None) -> tuple[int | None, ...]:
    """Spatial size for images: `HxW` text if given, else the model's (None on free axes)."""
    spatial = tuple(shape[2:]) if shape is not None else (None, None)
    if not text:
        return tuple(d if isinstance(d, int) else None for d in spatial)
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
    fixed = [(got, want) for got, want in zip(size, spatial, strict=True) if isinstance(want, int)]
    if any(got != want for got, want in fixed):
        model = "x".join(str(d) if isinstance(d, int) else "?" for d in spatial)
        raise InputError(
            f"--size {text}: the model fixes its input at {model}; expected that size (or no "
            "--size)"
        )
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
                dims = [str(d) if d else "?" for d in size]
                axes = ", ".join([*dims, str(channels)] if last else [str(channels), *dims])
                raise InputError(
                    f"{path}: expected a .npy or .csv array of shape ({axes}), got an image: "
                    f"the model takes {len(size)}-D inputs, not pictures"
                )
            x, picture = load_image(path, size, fmt.preprocess, channels, fmt.resize)
            size = picture.shape[:2]  # free axes: later images take the first one's size
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
