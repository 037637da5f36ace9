"""Colour maps and overlays, written as PNG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from onnxcam.errors import ArgumentError


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
        raise ArgumentError(f"image of shape {image.shape[:2]} does not match map {heat.shape}")
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    return blended.round().clip(0, 255).astype(np.uint8)


#: The short side of a titled picture's image panels, in pixels: small inputs are enlarged so
#: that the title and the colour bar stay legible, large ones shrunk.
PANEL_PIXELS = 320


def figure_png(
    heat: np.ndarray,
    image: np.ndarray | None = None,
    title: str = "",
    panel: bool = False,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> bytes:
    """A PNG of the map blended over an (H, W, 3) image, with a title and a colour bar for
    the map's values; with `panel`, the image alone beside it."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    blended = overlay(heat, image, alpha, cmap)
    height, width = heat.shape
    scale = min(PANEL_PIXELS / min(height, width), 4 * PANEL_PIXELS / max(height, width))
    dpi = 100
    panels = 2 if panel and image is not None else 1
    size = (panels * width * scale / dpi + 1.0, height * scale / dpi + 0.6)
    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    if panels == 2:
        axes[0].imshow(image, interpolation="antialiased")
        axes[0].set_title("input", fontsize=9)
    axes[-1].imshow(blended, interpolation="antialiased")
    for ax in axes:
        ax.set_axis_off()
    bar = ScalarMappable(Normalize(0, 1), colormaps[cmap])
    figure.colorbar(bar, ax=axes[-1], fraction=0.046, pad=0.02, label="map")
    figure.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def series_png(
    heat: np.ndarray,
    series: np.ndarray | None = None,
    title: str = "",
    cmap: str = "jet",
    variables: list[str] | None = None,
) -> bytes:
    """A PNG of a series (C, T) as lines over its map (T,) drawn as a coloured band.

    Without a series, the band alone. Each variable is one line; the band spans the plot's
    height behind them, one colour per time step.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heat = np.asarray(heat, np.float64)
    if heat.ndim != 1:
        raise ArgumentError(f"expected a map of shape (T,), got {heat.shape}")
    if series is not None:
        series = np.asarray(series, np.float64).reshape(-1, len(heat))
    figure = Figure(figsize=(8, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    low, high = (0.0, 1.0) if series is None else (series.min(), series.max())
    pad = 0.05 * (high - low or 1.0)
    band = ax.imshow(
        np.clip(heat, 0, 1)[None],
        cmap=cmap,
        vmin=0,
        vmax=1,
        aspect="auto",
        alpha=0.55,
        extent=(-0.5, len(heat) - 0.5, low - pad, high + pad),
        interpolation="nearest",
    )
    if series is not None:
        names = variables or [f"variable {c}" for c in range(len(series))]
        for values, name in zip(series, names, strict=False):
            ax.plot(np.arange(len(heat)), values, linewidth=1.2, label=name)
        if len(series) > 1:
            ax.legend(loc="upper right", fontsize=7, ncol=min(len(series), 6), framealpha=0.7)
    ax.set_xlim(-0.5, len(heat) - 0.5)
    ax.set_xlabel("time step")
    ax.set_title(title, fontsize=9)
    figure.colorbar(band, ax=ax, fraction=0.03, pad=0.01, label="map")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
