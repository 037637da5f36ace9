"""Occlusion sensitivity (Zeiler & Fergus, ECCV 2014, algorithms §2.14)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from onnxcam.engine.methods.base import Context, Method, MethodOutput, passes_of
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import OptionError, choice, integer, number
from onnxcam.engine.runner import Perturbation
from onnxcam.engine.targets import SCORE_KINDS
from onnxcam.errors import ArgumentError
from onnxcam.kernels import minmax_normalize

#: Most windows per input (one pass each): patch 1, stride 1 on a 1024 x 1024 image.
MAX_WINDOWS = 2**20


def window_starts(length: int, patch: int, stride: int) -> np.ndarray:
    """Window starts along one axis: 0, stride, ... until a window reaches the end; where the
    strides do not tile the axis, the last window is clipped at the border (as Captum's
    Occlusion does), so every position is covered."""
    if not 1 <= patch <= length or stride < 1:
        raise ArgumentError(
            f"occlusion needs 1 <= patch <= {length} and stride >= 1, got {patch}, {stride}"
        )
    return np.arange(-(-(length - patch) // stride) + 1) * stride


class OccludedInputs(Perturbation):
    """Item i: X[images[i]] with window windows[i] set to `value`."""

    def __init__(self, x, images, windows, patch: Sequence[int], value: float) -> None:
        self.x, self.images, self.windows = x, images, windows
        self.patch, self.value = patch, value
        self.n_items = len(images)
        self.item_shape = x.shape[1:]

    def region(self, i: int) -> tuple[slice, ...]:
        return tuple(slice(s, s + p) for s, p in zip(self.windows[i], self.patch, strict=True))

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = np.take(self.x, self.images[start:stop], axis=0, out=out[: stop - start])
        for b, i in enumerate(range(start, stop)):
            batch[(b, slice(None), *self.region(i))] = self.value
        return batch


@register
class Occlusion(Method):
    """Occlusion sensitivity (Zeiler & Fergus, ECCV 2014): the score's drop when a window of
    the input is covered.

    Each position's attribution (`raw`, signed) is the mean of f^c(X) - f^c(X occluded) over
    the windows covering it; `maps` keep its positive part, min-max normalised. Windows of
    `patch` (default: 1/8 of the smaller side) every `stride` (default: half the patch); a
    last window clipped at the border covers what the strides leave.
    """

    uses_layer: ClassVar[bool] = False

    name = "occlusion"
    passes = "windows"

    patch: int | None = integer(None, "window size (None: 1/8 of the smaller side)", low=1)
    stride: int | None = integer(None, "window step (None: half the patch)", low=1)
    value: float = number(0.0, "what covered positions are set to (0: the mean colour)")
    score: str = choice("prob", SCORE_KINDS, "class score compared", what="occlusion score")

    def explain(self, ctx: Context) -> MethodOutput:
        spatial = ctx.input_size
        patch = self.patch if self.patch is not None else max(1, min(spatial) // 8)
        stride = self.stride if self.stride is not None else max(1, patch // 2)
        starts = [window_starts(length, patch, stride) for length in spatial]
        windows = np.stack(np.meshgrid(*starts, indexing="ij"), axis=-1).reshape(-1, len(spatial))
        n_images, n_windows = len(ctx.x), len(windows)
        if n_windows > MAX_WINDOWS:
            raise OptionError(
                f"occlusion with patch {patch} and stride {stride} would run {n_windows} "
                f"windows per input: expected at most {MAX_WINDOWS} (raise the patch or stride)"
            )
        images = np.repeat(np.arange(n_images), n_windows)
        perturbation = OccludedInputs(
            ctx.x, images, np.tile(windows, (n_images, 1)), [patch] * len(spatial), self.value
        )
        original = ctx.scorer.read(ctx.logits, ctx.targets, self.score)
        total = np.zeros((n_images, *spatial), np.float64)
        count = np.zeros(spatial, np.float64)
        for w in range(n_windows):
            count[perturbation.region(w)] += 1

        def accumulate(start: int, stop: int, scores: np.ndarray, _: np.ndarray) -> None:
            for b, i in enumerate(range(start, stop)):
                total[(images[i], *perturbation.region(i))] += original[images[i]] - scores[b]

        ctx.scorer.score(perturbation, ctx.targets[images], self.score, self.name, accumulate)
        raw = np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)
        maps, constant = minmax_normalize(np.maximum(raw, 0), 1e-8)
        metadata = {
            "patch": patch,
            "stride": stride,
            "value": self.value,
            "windows": n_windows,
            **passes_of(images, n_images),
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, None, metadata)
