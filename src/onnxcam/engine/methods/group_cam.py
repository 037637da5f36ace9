"""Group-CAM (Zhang, Rao, Yang, arXiv 2103.13859, algorithms §2.11; the authors' final code)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.blur import gaussian_blur
from onnxcam.engine.methods.base import Context, Method, MethodOutput, passes
from onnxcam.engine.methods.parts.channels import constant_channels
from onnxcam.engine.methods.parts.gradients import layer_gradients, mean_gradients
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import OptionError, integer, number
from onnxcam.engine.postprocess import PostProcess, combine
from onnxcam.engine.runner import Perturbation
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
    """Group-CAM (Zhang, Rao, Yang, arXiv 2103.13859): Grad-CAM-weighted channels summed in
    contiguous groups; each group's map blends the input with a blurred copy.

    M_g = ReLU(sum_{k in g} a_k A^k), X_g = X * s(Up(M_g)) + blur(X) * (1 - s(Up(M_g))),
    s_g = ReLU(p^c(X_g) - p^c(blur(X))), L = sum_g s_g M_g. Constant groups cost no pass.
    """

    name = "group-cam"
    uses_gradients = True
    passes = "1 backward + groups + 1"

    groups: int = integer(32, "contiguous channel groups", low=1)
    blur_size: int = integer(51, "side of the Gaussian blur kernel (odd)", low=1, most=1001)
    blur_sigma: float = number(50.0, "standard deviation of the blur", low=0, low_open=True)
    denoise_percentile: float | None = number(
        None,
        "zero each group map below this percentile (the early code)",
        low=0,
        high=100,
        high_open=True,
    )

    def check(self) -> None:
        if self.blur_size % 2 == 0:
            raise OptionError(f"blur_size must be odd, got {self.blur_size}")

    def explain(self, ctx: Context) -> MethodOutput:
        alpha = mean_gradients(layer_gradients(ctx), keepdims=True)
        maps = group_maps(alpha * ctx.activations, self.groups)
        if self.denoise_percentile is not None:
            maps = denoise(maps, self.denoise_percentile)
        blurred = gaussian_blur(ctx.x, self.blur_size, self.blur_sigma)
        n = len(ctx.x)
        images, groups = np.nonzero(~constant_channels(maps))
        images = np.concatenate([images, np.arange(n)])  # then one blurred baseline per image
        groups = np.concatenate([groups, np.full(n, -1)])
        probs = ctx.scorer.score(
            BlendedInputs(ctx.x, blurred, maps, images, groups),
            ctx.targets[images],
            "prob",
            self.name,
        )
        baseline = probs[-n:]
        weights = np.zeros(maps.shape[:2])
        weights[images[:-n], groups[:-n]] = np.maximum(probs[:-n] - baseline[images[:-n]], 0)
        raw, out, constant = combine(maps, weights, ctx.input_size, PostProcess())
        per_input = np.bincount(images, minlength=n) + 1  # masked and baseline, and the backward
        metadata = {
            "groups": int(maps.shape[1]),
            **passes(per_input, int(maps.shape[0] * maps.shape[1] + n - len(images))),
            "blur": [self.blur_size, self.blur_sigma],
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, out, weights, metadata)
