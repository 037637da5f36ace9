"""Ablation-CAM (Desai & Ramaswamy, WACV 2020, algorithms §2.12)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from onnxcam.engine.graph import CHANNEL_SCALE
from onnxcam.engine.methods.base import ChannelWeightMethod, Context, passes_of
from onnxcam.engine.methods.parts.activations import SAFE_SCORE, ActivationEdits, tail_route
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import OptionError, choice, integer, number
from onnxcam.engine.runner import Perturbation
from onnxcam.engine.scoring import Scorer
from onnxcam.engine.targets import class_scores

MODES = ("tail", "full")


class ScaledInputs(Perturbation):
    """Item i: the input X[images[i]] with channel channels[i] of the layer scaled to 0."""

    def __init__(self, x: np.ndarray, images: np.ndarray, channels: np.ndarray, k: int) -> None:
        self.x, self.images, self.channels, self.k = x, images, channels, k
        self.n_items = len(images)
        self.item_shape = x.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        return np.take(self.x, self.images[start:stop], axis=0, out=out[: stop - start])

    def feeds(self, start: int, stop: int) -> dict[str, np.ndarray]:
        scale = np.ones((stop - start, self.k), np.float32)
        scale[np.arange(stop - start), self.channels[start:stop]] = 0
        return {CHANNEL_SCALE: scale}


@register
class AblationCAM(ChannelWeightMethod):
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020): the drop of the class logit when a channel
    is set to `value` weights that channel.

    w_k = (y^c - y^c_k) / y^c, L = ReLU(sum_k w_k A^k). `tail` runs only the graph after the
    layer on ablated activations; `full` runs the whole model with a channel scale injected at
    the layer (the same numbers, for comparison).
    """

    name = "ablation-cam"
    passes = "channels, **tail only**"

    mode: str = choice(
        "tail", MODES, "run the tail after the layer or the whole model", what="ablation-cam mode"
    )
    value: float = number(0.0, "what an ablated channel is set to")
    max_channels: int | None = integer(
        None, "ablate only this many channels of largest spatial std per image", low=1
    )

    def check(self) -> None:
        if self.mode == "full" and self.value != 0:
            raise OptionError(
                f"ablation-cam mode 'full' ablates to 0 (a channel scale), got value {self.value}"
            )

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        acts = ctx.activations
        n_images, n_channels = acts.shape[:2]
        flat = acts.reshape(n_images, n_channels, -1)
        unchanged = (flat == self.value).all(axis=-1)  # ablating changes nothing: weight 0
        images, channels = np.nonzero(ctx.top_std(self.max_channels) & ~unchanged)

        scorer: Scorer
        if self.mode == "tail":  # an ablated channel's mean over positions is `value`
            source, scorer, crossing = tail_route(ctx)

            def ablate(batch: np.ndarray, start: int, stop: int) -> None:
                np.take(source, images[start:stop], axis=0, out=batch)
                batch[np.arange(stop - start), channels[start:stop]] = self.value

            perturbation: Perturbation = ActivationEdits(source, images, ablate, crossing)
        else:
            scorer = Scorer(ctx.views.scaled, ctx.views.logits, ctx.batch_size, ctx.progress)
            perturbation = ScaledInputs(ctx.x, images, channels, n_channels)
        ablated = scorer.score(
            perturbation, ctx.targets[images], "logit", f"{self.name} ({self.mode})"
        )
        original = class_scores(ctx.logits, ctx.targets)
        safe = np.abs(original) > SAFE_SCORE
        if not safe.all():
            warnings.warn(
                f"ablation-cam: class score ~0 for inputs {np.flatnonzero(~safe).tolist()}; "
                "their weights are set to 0",
                RuntimeWarning,
                stacklevel=2,
            )
        weights = np.zeros((n_images, n_channels))
        drop = original[images] - ablated
        weights[images, channels] = np.where(
            safe[images], drop / np.where(safe, original, 1)[images], 0
        )
        metadata = {
            "mode": self.mode,
            "pooled": self.mode == "tail" and ctx.pooled is not None,
            "channels": int(n_channels),
            **passes_of(images, n_images, n_images * n_channels - len(images)),
            "zero_score_inputs": np.flatnonzero(~safe).tolist(),
        }
        return weights, metadata
