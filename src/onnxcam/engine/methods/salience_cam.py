"""Salience-CAM (Zhou et al., IJCNN 2021, algorithms §2.16) in the spec's documented reading."""

from __future__ import annotations

import numpy as np

from onnxcam.engine import backward, graph
from onnxcam.engine.methods.base import Context, Method, MethodOutput, passes
from onnxcam.engine.methods.parts.gradients import layer_gradients, mean_gradients
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import flag
from onnxcam.engine.runner import Perturbation, Runner
from onnxcam.kernels import minmax_normalize

READING = "documented reading of algorithms §2.16; not verified against the paper"


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
    """Salience-CAM (Zhou et al., IJCNN 2021), a documented reading NOT verified against the
    paper (only its abstract could be read): Grad-CAM weights over each channel's salience.

    S^k = sum_c |d(sum_j A^k_j) / dX_c|, L = ReLU(sum_k a_k S^k), a_k the Grad-CAM weights.
    `absolute` (default) costs one backward pass per (input, channel) with a_k != 0; without
    it the sum folds into one backward pass of sum_k a_k sum_j A^k_j.
    """

    name = "salience-cam"
    uses_gradients = True
    passes = "1 + channels backward"

    absolute: bool = flag(True, "absolute value of each channel's input gradient")

    def explain(self, ctx: Context) -> MethodOutput:
        alpha = mean_gradients(layer_gradients(ctx))
        views = ctx.views
        source = graph.model_input(views.model).name
        runner = views.backward((views.layer,), (source,))
        output, seed_input = backward.grad_name(source), backward.seed_name(views.layer)
        if self.absolute:
            salience = self._absolute(ctx, runner, output, seed_input, alpha)
        else:
            weights = alpha.reshape(*alpha.shape, *[1] * (ctx.activations.ndim - 2))
            seed = np.broadcast_to(weights, ctx.activations.shape).astype(np.float32)
            (dx,) = runner.run(ctx.x, [output], ctx.batch_size, {seed_input: seed})
            salience = dx.sum(axis=1)
        raw = np.maximum(salience, 0).astype(np.float32)
        maps, constant = minmax_normalize(raw, 1e-8)
        per_input = np.count_nonzero(alpha, axis=1) if self.absolute else np.ones(len(ctx.x))
        skipped = int(alpha.size - per_input.sum()) if self.absolute else 0
        metadata = {  # one backward pass per input for alpha, then the salience passes
            **passes(1 + per_input, skipped),
            "absolute": self.absolute,
            "reading": READING,
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, alpha, metadata)

    def _absolute(
        self, ctx: Context, runner: Runner, output: str, seed_input: str, alpha: np.ndarray
    ) -> np.ndarray:
        images, channels = np.nonzero(alpha)
        salience = np.zeros((len(ctx.x), *ctx.input_size))
        weights = alpha[images, channels]

        def accumulate(out: np.ndarray, start: int, stop: int) -> np.ndarray:
            scale = weights[start:stop].reshape(-1, *[1] * (out.ndim - 2))
            np.add.at(salience, images[start:stop], np.abs(out).sum(axis=1) * scale)
            return np.zeros(stop - start)

        perturbation = ChannelSeeds(ctx.x, ctx.activations.shape[1:], seed_input, images, channels)
        runner.map_batches(
            perturbation, output, accumulate, ctx.batch_size, ctx.progress, desc=self.name
        )
        return salience
