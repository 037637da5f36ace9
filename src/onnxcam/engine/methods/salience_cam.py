"""Salience-CAM (spec §2.16), in the spec's documented reading, NOT verified against the paper
(only its abstract could be read): Grad-CAM channel weights, with each channel's upsampled map
replaced by its salience at input resolution,

    S^k = sum_c |d(sum_j A^k_j) / dX_c|,    L = ReLU(sum_k alpha_k S^k).

With absolute=True (default) that is one backward pass per (input, channel) with a nonzero
weight, batched like perturbations; absolute=False folds the sum into one backward pass of
sum_k alpha_k sum_j A^k_j. The result's metadata says which reading produced it.
"""

from __future__ import annotations

import numpy as np

from onnxcam.engine import backward, graph
from onnxcam.engine.methods.base import Context, Method, MethodOutput, register
from onnxcam.engine.methods.gradient import layer_gradients
from onnxcam.engine.runner import Perturbation
from onnxcam.kernels import minmax_normalize

READING = "documented reading of spec §2.16; not verified against the paper"


class ChannelSeeds(Perturbation):
    """Item i: input n_i, seeded at the layer with ones on channel k_i (zeros elsewhere)."""

    def __init__(self, x, layer_shape, seed_input, images, channels) -> None:
        self.x, self.layer_shape, self.seed_input = x, layer_shape, seed_input
        self.images, self.channels = images, channels
        self.n_items, self.item_shape = len(images), x.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        out[: stop - start] = self.x[self.images[start:stop]]
        return out[: stop - start]

    def feeds(self, start: int, stop: int) -> dict[str, np.ndarray]:
        seeds = np.zeros((stop - start, *self.layer_shape), np.float32)
        seeds[np.arange(stop - start), self.channels[start:stop]] = 1.0
        return {self.seed_input: seeds}


@register
class SalienceCAM(Method):
    name = "salience-cam"

    def __init__(self, absolute: bool = True) -> None:
        if not isinstance(absolute, bool):
            raise ValueError(f"absolute must be true or false, got {absolute!r}")
        self.absolute = absolute

    def explain(self, ctx: Context) -> MethodOutput:
        grads = layer_gradients(ctx)
        alpha = grads.mean(axis=tuple(range(2, grads.ndim)), dtype=np.float64)
        views = ctx.views
        source = graph.model_input(views.model).name
        runner = views.backward((views.layer,), (source,))
        output, seed_input = backward.grad_name(source), backward.seed_name(views.layer)
        if self.absolute:
            salience = self._absolute(ctx, runner, output, seed_input, alpha)
        else:
            seed = (alpha[..., None] * np.ones(ctx.activations.shape[2:]).ravel()).astype(
                np.float32
            )
            seed = seed.reshape(ctx.activations.shape)
            (dx,) = runner.run(ctx.x, [output], ctx.batch_size, {seed_input: seed})
            salience = dx.sum(axis=1)
        raw = np.maximum(salience, 0).astype(np.float32)
        maps, constant = minmax_normalize(raw, 1e-8)
        per_input = np.count_nonzero(alpha, axis=1) if self.absolute else np.ones(len(ctx.x))
        salience_passes = int(per_input.sum())
        metadata = {  # one backward pass per input for alpha, then the salience passes
            "passes_run": len(ctx.x) + salience_passes,
            "passes_skipped": int(alpha.size) - salience_passes if self.absolute else 0,
            "passes_per_input": [1 + int(p) for p in per_input],
            "absolute": self.absolute,
            "reading": READING,
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, alpha, metadata)

    def _absolute(self, ctx, runner, output, seed_input, alpha) -> np.ndarray:
        images, channels = np.nonzero(alpha)
        salience = np.zeros((len(ctx.x), *ctx.input_size))
        weights = alpha[images, channels]

        def accumulate(out: np.ndarray, start: int, stop: int) -> np.ndarray:
            per_item = np.abs(out).sum(axis=1) * weights[start:stop].reshape(
                -1, *[1] * (out.ndim - 2)
            )
            np.add.at(salience, images[start:stop], per_item)
            return np.zeros(stop - start)

        perturbation = ChannelSeeds(ctx.x, ctx.activations.shape[1:], seed_input, images, channels)
        runner.map_batches(
            perturbation, output, accumulate, ctx.batch_size, ctx.progress, desc=self.name
        )
        return salience
