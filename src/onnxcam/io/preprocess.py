"""Image preprocessing presets: how a photo becomes a model input (scale, crop, normalise)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def override_notice(name: str, stored: dict | None) -> str | None:
    """One line saying that the preset `name` replaces the preprocessing the exporter recorded
    (None when nothing is recorded, `name` is auto, or the preset is the recorded one): maps of
    a wrongly normalised input look plausible, so the choice is said out loud."""
    if name == "auto" or not stored:
        return None
    chosen, recorded = preset(name), Preprocess(**stored)
    pairs = [(chosen.mean, recorded.mean), (chosen.std, recorded.std)]
    if all(len(a) == len(b) and all(map(math.isclose, a, b)) for a, b in pairs):
        return None
    return (
        f"notice: --preprocess {name} replaces the preprocessing recorded in the model "
        f"(mean {list(recorded.mean)}, std {list(recorded.std)}); --preprocess auto uses it"
    )
