"""Methods that perturb the target layer's activations and run only the graph's tail (spec §2.12,
§2.12b): the head is never re-run, which makes them far cheaper than input-space methods.

- `ablation-cam` (Desai & Ramaswamy 2020): w_k = (y - y_k) / y, y_k the class logit with channel k
  set to `value`. `mode="tail"` runs the tail on ablated activations; `mode="full"` runs the whole
  model with a channel scale injected at the layer (same numbers, for comparison).
- `recipro-cam` (Byun & Lee): one feature map per location keeping only that location's channel
  vector (or spreading it with a [1, 2, 1] kernel per axis, `gaussian=True`); the map is the
  class probability of each, min-max normalised, upsampled and (unlike the official code, so
  that every method's maps reach 1) normalised again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from onnxcam.engine.graph import CHANNEL_SCALE
from onnxcam.engine.methods.base import (
    ChannelWeightMethod,
    Context,
    Method,
    MethodOutput,
    passes_per_input,
    positive_int,
    register,
)
from onnxcam.engine.methods.score_cam import top_std_channels
from onnxcam.engine.postprocess import PostProcess, finish_maps
from onnxcam.engine.runner import Perturbation
from onnxcam.engine.targets import class_scores

Edit = Callable[[np.ndarray, int, int], None]


class ActivationEdits(Perturbation):
    """Item i: A[images[i]] changed by `edit`; tensors that cross the cut follow the image."""

    def __init__(
        self,
        activations: np.ndarray,
        images: np.ndarray,
        edit: Edit,
        crossing: dict[str, np.ndarray],
    ) -> None:
        self.activations, self.images = activations, images
        self.edit, self.crossing = edit, crossing
        self.n_items = len(images)
        self.item_shape = activations.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = out[: stop - start]
        self.edit(batch, start, stop)
        return batch

    def feeds(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {name: value[self.images[start:stop]] for name, value in self.crossing.items()}


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
    name = "ablation-cam"
    MODES = ("tail", "full")

    def __init__(self, mode: str = "tail", value: float = 0.0, max_channels: int | None = None):
        if mode not in self.MODES:
            raise ValueError(f"ablation-cam mode must be one of {self.MODES}, got {mode!r}")
        if mode == "full" and value != 0:
            raise ValueError(
                f"ablation-cam mode 'full' ablates to 0 (a channel scale), got {value}"
            )
        self.mode, self.value = mode, value
        self.max_channels = positive_int("max_channels", max_channels, optional=True)

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        acts = ctx.activations
        n_images, n_channels = acts.shape[:2]
        flat = acts.reshape(n_images, n_channels, -1)
        unchanged = (flat == self.value).all(axis=-1)  # ablating changes nothing: weight 0
        images, channels = np.nonzero(top_std_channels(acts, self.max_channels) & ~unchanged)
        classes = ctx.targets[images]

        def ablate(batch: np.ndarray, start: int, stop: int) -> None:
            np.take(acts, images[start:stop], axis=0, out=batch)
            batch[np.arange(stop - start), channels[start:stop]] = self.value

        if self.mode == "tail":
            crossing = ctx.views.crossing(ctx.x, ctx.batch_size)
            runner, batch_size = ctx.views.tail, ctx.tail_batch_size
            perturbation: Perturbation = ActivationEdits(acts, images, ablate, crossing)
        else:
            runner, batch_size = ctx.views.scaled, ctx.batch_size
            perturbation = ScaledInputs(ctx.x, images, channels, n_channels)
        ablated = runner.map_batches(
            perturbation,
            ctx.logits_name,
            lambda out, start, stop: class_scores(out, classes[start:stop]),
            batch_size,
            ctx.progress,
            desc=f"{self.name} ({self.mode})",
        )
        original = class_scores(ctx.logits, ctx.targets)
        weights = np.zeros((n_images, n_channels))
        safe = np.abs(original) > 1e-12
        if not safe.all():
            warnings.warn(
                f"ablation-cam: class score ~0 for inputs {np.flatnonzero(~safe).tolist()}; "
                "their weights are set to 0",
                RuntimeWarning,
                stacklevel=2,
            )
        drop = original[images] - ablated
        weights[images, channels] = np.where(
            safe[images], drop / np.where(safe, original, 1)[images], 0
        )
        metadata = {
            "mode": self.mode,
            "channels": int(n_channels),
            "passes_run": len(images),
            "passes_per_input": passes_per_input(images, n_images),
            "passes_skipped": int(n_images * n_channels - len(images)),
            "zero_score_inputs": np.flatnonzero(~safe).tolist(),
        }
        return weights, metadata


def spread_kernel(ndim: int) -> np.ndarray:
    """[1, 2, 1] / 4 along each spatial axis: the 3-tap (3x3 in 2-D) spreading kernel."""
    taps = np.array([1.0, 2.0, 1.0]) / 4
    kernel = taps
    for _ in range(ndim - 1):
        kernel = np.multiply.outer(kernel, taps)
    return kernel.astype(np.float32)


@register
class ReciproCAM(Method):
    name = "recipro-cam"
    post = PostProcess(normalize_before_resize=True)

    def __init__(self, gaussian: bool = False) -> None:
        if not isinstance(gaussian, bool):
            raise ValueError(f"gaussian must be true or false, got {gaussian!r}")
        self.gaussian = gaussian

    def explain(self, ctx: Context) -> MethodOutput:
        acts = ctx.activations
        n_images, spatial = acts.shape[0], acts.shape[2:]
        n_locations = int(np.prod(spatial))
        images = np.repeat(np.arange(n_images), n_locations)
        locations = np.tile(np.arange(n_locations), n_images)
        if self.gaussian:
            kernel = spread_kernel(len(spatial))
            taps = [(np.array(o) - 1, kernel[o]) for o in np.ndindex(kernel.shape)]
        else:
            taps = [(np.zeros(len(spatial), int), 1.0)]

        def mosaic(batch: np.ndarray, start: int, stop: int) -> None:
            batch[:] = 0
            for b, i in enumerate(range(start, stop)):
                centre = np.array(np.unravel_index(locations[i], spatial))
                vector = acts[images[i]][(slice(None), *centre)]
                for offset, weight in taps:
                    where = centre + offset
                    if np.all(where >= 0) and np.all(where < spatial):
                        batch[(b, slice(None), *where)] = vector * weight

        crossing = ctx.views.crossing(ctx.x, ctx.batch_size)
        classes = ctx.targets[images]
        scores = ctx.views.tail.map_batches(
            ActivationEdits(acts, images, mosaic, crossing),
            ctx.logits_name,
            lambda out, start, stop: class_scores(out, classes[start:stop], "prob"),
            ctx.tail_batch_size,
            ctx.progress,
            desc=self.name,
        )
        raw = scores.reshape(n_images, *spatial).astype(np.float32)
        maps, constant = finish_maps(raw, ctx.input_size, self.post)
        metadata = {
            "gaussian": self.gaussian,
            "passes_run": len(images),
            "passes_per_input": passes_per_input(images, n_images),
            "passes_skipped": 0,
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, None, metadata)
