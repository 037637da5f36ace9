"""The result of one explain call, and how it is saved: PNG overlays, .npy maps, a manifest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onnxcam.engine.targets import softmax
from onnxcam.files import npy_bytes, prepare_dir, write_atomic


@dataclass
class Explanation:
    """Maps for N inputs.

    maps: (N, *S) float32 in [0, 1] at input resolution. raw: (N, *s) at the layer's resolution,
    after ReLU, before resize. weights: (N, K) channel weights, or None for methods without
    them. targets: (N,) explained class. logits: (N, classes) scores of the unperturbed inputs.
    relevance: (N, C, *S) signed input relevance of relevance methods (LRP), else None; saved
    as `<name>_relevance.npy`.
    """

    maps: np.ndarray
    raw: np.ndarray
    weights: np.ndarray | None
    targets: np.ndarray
    logits: np.ndarray
    method: str
    layer: str
    metadata: dict[str, Any] = field(default_factory=dict)
    relevance: np.ndarray | None = None

    @property
    def probabilities(self) -> np.ndarray:
        """(N,) softmax probability of the explained class."""
        return softmax(self.logits)[np.arange(len(self.targets)), self.targets]

    def save(
        self,
        out_dir: str | Path,
        images: Sequence[np.ndarray] | None = None,
        names: Sequence[str] | None = None,
        series: Sequence[np.ndarray] | None = None,
    ) -> Path:
        """Write `<name>.png`, `<name>.npy` and manifest.json.

        The PNG of a 2-D map is an overlay on `images` (H, W, 3) where given; that of a 1-D map
        is a plot of the series (C, T) from `series` over the map drawn as a coloured band.
        Returns the manifest's path. Every file goes to a temporary name and is renamed.
        """
        from onnxcam.viz import overlay, png_bytes, series_png

        out = prepare_dir(out_dir)
        n = len(self.maps)
        names = list(names) if names is not None else [f"{i:04d}" for i in range(n)]
        if any(len(given) != n for given in (names, images, series) if given is not None):
            raise ValueError(f"expected {n} names, images and series, one per map")
        entries = []
        probabilities = self.probabilities
        for i, name in enumerate(names):
            files = {"map": write_atomic(out / f"{name}.npy", npy_bytes(self.maps[i])).name}
            if self.relevance is not None:
                data = npy_bytes(self.relevance[i])
                files["relevance"] = write_atomic(out / f"{name}_relevance.npy", data).name
            if self.maps[i].ndim == 2:
                picture = overlay(self.maps[i], None if images is None else images[i])
                files["overlay"] = write_atomic(out / f"{name}.png", png_bytes(picture)).name
            elif self.maps[i].ndim == 1:
                title = f"{self.method}: class {int(self.targets[i])} (p={probabilities[i]:.3f})"
                plot = series_png(self.maps[i], None if series is None else series[i], title)
                files["plot"] = write_atomic(out / f"{name}.png", plot).name
            entries.append(
                {
                    "name": name,
                    "target": int(self.targets[i]),
                    "probability": float(probabilities[i]),
                    "files": files,
                }
            )
        manifest = {
            "method": self.method,
            "layer": self.layer,
            "metadata": self.metadata,
            "inputs": entries,
        }
        text = json.dumps(manifest, indent=2, default=_jsonable)
        return write_atomic(out / "manifest.json", text.encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
