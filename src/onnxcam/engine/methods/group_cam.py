"""Group-CAM (spec §2.11, the authors' final code): Grad-CAM-weighted channels summed in
contiguous groups; each group's normalised map blends the input with a blurred copy, and the
rise of the class probability over the blurred input weights the group.

X_g = X * s(Up(M_g)) + blur(X) * (1 - s(Up(M_g))), s_g = ReLU(p^c(X_g) - p^c(blur(X))),
L = sum_g s_g M_g (then the engine's ReLU, resize, min-max with eps 1e-8). Constant groups
give X_g = blur(X) and weight 0, so they cost no pass.
"""

from __future__ import annotations

import numpy as np

from onnxcam.engine.blur import gaussian_blur
from onnxcam.engine.methods.base import (
    Context,
    Method,
    MethodOutput,
    passes_per_input,
    positive_int,
    register,
)
from onnxcam.engine.methods.gradient import layer_gradients
from onnxcam.engine.methods.score_cam import constant_channels
from onnxcam.engine.postprocess import PostProcess, combine
from onnxcam.engine.runner import Perturbation
from onnxcam.engine.targets import class_scores
from onnxcam.kernels import masked_inputs


def group_maps(weighted: np.ndarray, groups: int) -> np.ndarray:
    """ReLU of the sums over contiguous channel groups, as torch.chunk splits K channels."""
    k = weighted.shape[1]
    size = -(-k // groups)
    sums = [weighted[:, lo : lo + size].sum(axis=1) for lo in range(0, k, size)]
    return np.maximum(np.stack(sums, axis=1), 0).astype(np.float32)


def denoise(maps: np.ndarray, percentile: float) -> np.ndarray:
    """Zero each group map below its own percentile (the early code's de-noising)."""
    flat = maps.reshape(*maps.shape[:2], -1)
    threshold = np.percentile(flat, percentile, axis=-1)[..., None]
    return (flat * (flat > threshold)).reshape(maps.shape).astype(np.float32)


class BlendedInputs(Perturbation):
    """Item i: blur(X)[n_i] + (X - blur(X))[n_i] * s(Up(M[n_i, g_i])); g_i = -1: blur(X)."""

    def __init__(self, x, blurred, maps, images, groups) -> None:
        self.difference, self.blurred, self.maps = x - blurred, blurred, maps
        self.images, self.groups = images, groups
        self.n_items, self.item_shape = len(images), x.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        images = self.images[start:stop]
        batch = masked_inputs(self.difference, self.maps, images, self.groups[start:stop], out)
        batch += self.blurred[images]
        return batch


@register
class GroupCAM(Method):
    name = "group-cam"

    def __init__(
        self,
        groups: int = 32,
        blur_size: int = 51,
        blur_sigma: float = 50.0,
        denoise_percentile: float | None = None,
    ) -> None:
        self.groups = positive_int("groups", groups)
        self.blur_size = positive_int("blur_size", blur_size)
        if blur_size % 2 == 0 or not isinstance(blur_sigma, (int, float)) or blur_sigma <= 0:
            raise ValueError(
                f"blur_size must be odd and blur_sigma > 0, got {blur_size}, {blur_sigma!r}"
            )
        if denoise_percentile is not None and not 0 <= denoise_percentile < 100:
            raise ValueError(f"denoise_percentile must be in [0, 100), got {denoise_percentile}")
        self.blur_sigma, self.denoise_percentile = float(blur_sigma), denoise_percentile

    def explain(self, ctx: Context) -> MethodOutput:
        grads = layer_gradients(ctx)
        alpha = grads.mean(axis=tuple(range(2, grads.ndim)), keepdims=True)
        maps = group_maps(alpha * ctx.activations, self.groups)
        if self.denoise_percentile is not None:
            maps = denoise(maps, self.denoise_percentile)
        blurred = gaussian_blur(ctx.x, self.blur_size, self.blur_sigma)
        n = len(ctx.x)
        images, groups = np.nonzero(~constant_channels(maps))
        images = np.concatenate([images, np.arange(n)])  # then one blurred baseline per image
        groups = np.concatenate([groups, np.full(n, -1)])
        classes = ctx.targets[images]
        probs = ctx.runner.map_batches(
            BlendedInputs(ctx.x, blurred, maps, images, groups),
            ctx.logits_name,
            lambda out, start, stop: class_scores(out, classes[start:stop], "prob"),
            ctx.batch_size,
            ctx.progress,
            desc=self.name,
        )
        baseline = probs[-n:]
        weights = np.zeros(maps.shape[:2])
        weights[images[:-n], groups[:-n]] = np.maximum(probs[:-n] - baseline[images[:-n]], 0)
        raw, out, constant = combine(maps, weights, ctx.input_size, PostProcess())
        metadata = {
            "groups": int(maps.shape[1]),
            "passes_run": len(images) + n,  # masked and baseline forwards, backward passes
            "passes_per_input": [p + 1 for p in passes_per_input(images, n)],
            "passes_skipped": int(maps.shape[0] * maps.shape[1] + n - len(images)),
            "blur": [self.blur_size, self.blur_sigma],
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, out, weights, metadata)
