"""Image files: decoded with Pillow, brought to the model's input size, then preprocessed.

Three ways to reach an imposed size (`RESIZE_MODES`): `crop` scales the image to cover the size
/ crop_fraction and takes the centre (what ImageNet models are evaluated with), `fit` scales it
to fit inside and pads with the mean colour (letterbox: nothing lost, the aspect ratio kept),
`stretch` resizes it to the size. A free axis (None) follows the image: its own size where
both are free, its aspect ratio where one is fixed.

The crop is taken in the source image's coordinates and only the crop is resampled, so the
work and memory follow the model's input size, not the image's aspect ratio (a 1 x 100000 px
strip would otherwise be blown up to millions of pixels before its crop). Images above
MAX_INPUT_PIXELS are refused before they are decoded. 16-bit images are scaled by their bit
depth; float images have no fixed range and are refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from onnxcam.errors import InputError
from onnxcam.io.preprocess import Preprocess

#: Largest image decoded (pixels): 64 megapixels, about 200 MB as RGB.
MAX_INPUT_PIXELS = 64 * 2**20
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
RESIZE_MODES = ("crop", "fit", "stretch")
#: (H, W) to bring an image to; None marks an axis the model leaves free.
Size = tuple[int | None, int | None]


def fit_image(image: Image.Image, size: tuple[int, int], crop_fraction: float) -> Image.Image:
    """The centre (H, W) crop of the image scaled to cover size / crop_fraction: the crop's box
    in source coordinates, resampled (bilinear) to (H, W)."""
    height, width = size
    scale = max(height / image.height, width / image.width) / crop_fraction
    covered = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    left, top = (covered[0] - width) // 2, (covered[1] - height) // 2
    sx, sy = image.width / covered[0], image.height / covered[1]
    box = (left * sx, top * sy, (left + width) * sx, (top + height) * sy)
    return image.resize((width, height), Image.BILINEAR, box=box)


def target_size(width: int, height: int, size: Size) -> tuple[int, int]:
    """(H, W) for an image of width x height: free axes (None) follow the image, keeping its
    aspect ratio where the other axis is fixed."""
    h, w = size
    if h is None and w is None:
        return height, width
    if h is None:
        return max(1, round(height * w / width)), w
    if w is None:
        return h, max(1, round(width * h / height))
    return h, w


def letterbox(image: Image.Image, size: tuple[int, int], fill: tuple[int, ...]) -> Image.Image:
    """The image scaled (bilinear) to fit inside (H, W), centred on a canvas of `fill`."""
    height, width = size
    scale = min(height / image.height, width / image.width)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", (width, height), fill)
    canvas.paste(
        image.resize(inner, Image.BILINEAR), ((width - inner[0]) // 2, (height - inner[1]) // 2)
    )
    return canvas


def resize_image(
    image: Image.Image, size: Size, mode: str, crop_fraction: float, fill: tuple[int, ...]
) -> Image.Image:
    """The image at `size` (free axes follow the image) by `mode`: crop, fit or stretch."""
    if mode not in RESIZE_MODES:
        raise InputError(f"unknown resize {mode!r}: expected one of {', '.join(RESIZE_MODES)}")
    height, width = target_size(image.width, image.height, size)
    if None in size:  # the image's own shape: nothing to crop or pad
        same = (height, width) == (image.height, image.width)
        return image if same else image.resize((width, height), Image.BILINEAR)
    if mode == "crop":
        return fit_image(image, (height, width), crop_fraction)
    if mode == "fit":
        return letterbox(image, (height, width), fill)
    return image.resize((width, height), Image.BILINEAR)


def eight_bit_rgb(image: Image.Image, path: str | Path) -> Image.Image:
    """An RGB image of 8 bits per channel: 16-bit images scaled by their depth (v / 257)."""
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "I":
        values = np.asarray(image, dtype=np.int64)
        if image.mode == "I" and (values.min() < 0 or values.max() > 65535):
            raise InputError(
                f"{path}: a 32-bit integer image with values in [{values.min()}, "
                f"{values.max()}]; expected 8 or 16 bits per channel (give a .npy array)"
            )
        grey = np.round(values / 257.0).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "F":
        raise InputError(
            f"{path}: a 32-bit float image (mode F) has no fixed range; expected 8 or 16 bits "
            "per channel (give a preprocessed .npy array instead)"
        )
    return image.convert("RGB")


def open_picture(
    path: str | Path,
    size: Size,
    crop_fraction: float,
    resize: str = "crop",
    fill: tuple[int, ...] = (0, 0, 0),
) -> np.ndarray:
    """The (H, W, 3) uint8 picture the model sees: decoded, bounded, and brought to `size` by
    `resize` (`fill`: the colour fit pads with)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # bounded below
            with Image.open(path) as opened:
                pixels = opened.width * opened.height
                if pixels > MAX_INPUT_PIXELS:
                    raise InputError(
                        f"{path}: an image of {opened.width}x{opened.height} "
                        f"({pixels / 2**20:.0f} megapixels); expected at most "
                        f"{MAX_INPUT_PIXELS // 2**20} megapixels"
                    )
                opened.load()
                image = eight_bit_rgb(opened, path)
                return np.asarray(resize_image(image, size, resize, crop_fraction, fill))
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"cannot read image {path}: it does not fit in memory") from None
    except Exception as err:  # a corrupt file can make Pillow's decoders raise anything
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read image {path}: {reason}") from err


def load_image(
    path: str | Path,
    size: Size,
    preprocess: Preprocess,
    channels: int = 3,
    resize: str = "crop",
) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W) float32 model input and the (H, W, 3) uint8 picture it was made from, brought
    to `size` by `resize` (fit pads with the preset's mean colour, which normalises to 0)."""
    if channels not in (1, 3):
        raise InputError(f"the model takes {channels} input channels: give .npy arrays, not images")
    mean = preprocess.mean * 3 if len(preprocess.mean) == 1 else preprocess.mean
    fill = tuple(round(255 * m) for m in mean[:3])
    picture = open_picture(path, size, preprocess.crop_fraction, resize, fill)
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
