"""The result of one explain call, and how it is saved: PNG overlays, .npy maps, a manifest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onnxcam.engine.targets import softmax
from onnxcam.errors import ArgumentError
from onnxcam.io import json_text, npy_bytes, prepare_dir, write_atomic


@dataclass
class Explanation:
    """Maps for N inputs.

    maps: (N, *S) float32 in [0, 1] at input resolution. raw: (N, *s) at the layer's resolution,
    after ReLU, before resize. weights: (N, K) channel weights, or None for methods without
    them. targets: (N,) explained class. logits: (N, classes) scores of the unperturbed inputs.
    relevance: (N, C, *S) signed input relevance of relevance methods (LRP), else None; saved
    as `<name>_relevance.npy`. instances: (N, M, *S) maps in [0, 1] of every instance of the
    target (each box of a detection target) where the method made them all at once (D-RISE),
    else None; saved as `<name>_instances.npy`.
    """

    maps: np.ndarray
    raw: np.ndarray
    weights: np.ndarray | None
    targets: np.ndarray
    logits: np.ndarray
    method: str
    layer: str | None  # None for methods that use no layer (RISE, occlusion, LRP, SR map)
    metadata: dict[str, Any] = field(default_factory=dict)
    relevance: np.ndarray | None = None
    class_names: list[str] | None = None  # one per class of the model, where known
    instances: np.ndarray | None = None

    @property
    def probabilities(self) -> np.ndarray:
        """(N,) softmax probability of the explained class."""
        return softmax(self.logits)[np.arange(len(self.targets)), self.targets]

    def class_text(self, i: int) -> str:
        """Input i's explained class as every title and console line names it: `tiger cat
        (class 282)`, or `class 282` without names."""
        target = int(self.targets[i])
        if self.class_names is None:
            return f"class {target}"
        return f"{self.class_names[target]} (class {target})"

    def title(self, i: int) -> str:
        """The title of input i's picture: class, probability, method and layer."""
        layer = f", layer {self.layer}" if self.layer is not None else ""
        return f"{self.class_text(i)}, p={self.probabilities[i]:.3f}; {self.method}{layer}"

    def save(
        self,
        out_dir: str | Path,
        images: Sequence[np.ndarray] | None = None,
        names: Sequence[str] | None = None,
        series: Sequence[np.ndarray] | None = None,
        panel: bool = False,
    ) -> Path:
        """Write `<name>.png`, `<name>.npy` and manifest.json.

        The PNG of a 2-D map is the map over `images` (H, W, 3) where given, titled with the
        class, its probability, the method and the layer, with a colour bar (`panel`: the image
        alone beside it); that of a 1-D map is a plot of the series (C, T) from `series` over
        the map drawn as a coloured band, titled alike. Returns the manifest's path. Every file
        goes to a temporary name and is renamed.
        """
        out = prepare_dir(out_dir)
        names = list(names) if names is not None else [f"{i:04d}" for i in range(len(self.maps))]
        files = self.save_maps(out, images, names, series=series, titled=True, panel=panel)
        probabilities = self.probabilities
        classes = self.class_names or {}
        entries = [
            {
                "name": name,
                "target": int(self.targets[i]),
                "class_name": classes[self.targets[i]] if classes else None,
                "probability": float(probabilities[i]),
                "files": files[i],
            }
            for i, name in enumerate(names)
        ]
        manifest = {
            "method": self.method,
            "layer": self.layer,
            "metadata": self.metadata,
            "inputs": entries,
        }
        text = json_text(manifest, indent=2)
        return write_atomic(out / "manifest.json", text.encode())

    def save_maps(
        self,
        out_dir: str | Path,
        images: Sequence[np.ndarray | None] | None,
        names: Sequence[str],
        overlays: bool = True,
        series: Sequence[np.ndarray] | None = None,
        titled: bool = False,
        panel: bool = False,
    ) -> list[dict[str, str]]:
        """Write `<name>.npy` per map (and `<name>_relevance.npy` where there is relevance) and,
        when `overlays`, `<name>.png`: a 2-D map over images[i] where it is not None (`titled`:
        a titled picture with a colour bar, and the image beside it with `panel`; else the
        blend alone, pixel for pixel at the input's size), a 1-D map as a band under the series
        (C, T). Names may hold sub-folders. Returns each input's files, relative to out_dir."""
        from onnxcam.io.pictures import figure_png, overlay, png_bytes, series_png

        out = prepare_dir(out_dir)
        n = len(self.maps)
        if any(len(given) != n for given in (names, images, series) if given is not None):
            raise ArgumentError(f"expected {n} names, images and series, one per map")
        written = []
        for i, name in enumerate(names):
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path.with_name(f"{path.name}.npy"), npy_bytes(self.maps[i]))
            files = {"map": f"{name}.npy"}
            if self.relevance is not None:
                data = npy_bytes(self.relevance[i])
                write_atomic(path.with_name(f"{path.name}_relevance.npy"), data)
                files["relevance"] = f"{name}_relevance.npy"
            image = None if images is None else images[i]
            if self.instances is not None:
                data = npy_bytes(self.instances[i])
                write_atomic(path.with_name(f"{path.name}_instances.npy"), data)
                files["instances"] = f"{name}_instances.npy"
            if overlays and self.maps[i].ndim == 2:
                if titled:
                    data = figure_png(self.maps[i], image, self.title(i), panel)
                else:
                    data = png_bytes(overlay(self.maps[i], image))
                write_atomic(path.with_name(f"{path.name}.png"), data)
                files["overlay"] = f"{name}.png"
            elif overlays and self.maps[i].ndim == 1:
                trace = None if series is None else series[i]
                plot = series_png(self.maps[i], trace, self.title(i))
                write_atomic(path.with_name(f"{path.name}.png"), plot)
                files["plot"] = f"{name}.png"
            written.append(files)
        return written
