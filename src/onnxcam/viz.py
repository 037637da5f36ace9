"""Colour maps and overlays, written as PNG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 colours."""
    from matplotlib import colormaps

    rgba = colormaps[cmap](np.clip(heat, 0, 1))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def overlay(
    heat: np.ndarray, image: np.ndarray | None = None, alpha: float = 0.5, cmap: str = "jet"
) -> np.ndarray:
    """Blend the coloured map over an (H, W, 3) uint8 image; the map alone without an image."""
    colours = colorize(heat, cmap).astype(np.float32)
    if image is None:
        return colours.astype(np.uint8)
    if image.shape[:2] != heat.shape:
        raise ValueError(f"image of shape {image.shape[:2]} does not match map {heat.shape}")
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    return blended.round().clip(0, 255).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()
