"""Salience-CAM (Zhou et al., IJCNN 2021, algorithms §2.16) in the spec's documented reading."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from onnxcam.engine import backward, graph
from onnxcam.engine.backward.gradients import activations as gradient_rules
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


def per_input_batches(images: np.ndarray, batch_size: int):
    """(image, item indices) of at most batch_size items of one image at a time."""
    for image in np.unique(images):
        picked = np.flatnonzero(images == image)
        for start in range(0, len(picked), batch_size):
            yield int(image), picked[start : start + batch_size]


@register
class SalienceCAM(Method):
    """Salience-CAM (Zhou et al., IJCNN 2021), a documented reading NOT verified against the
    paper (only its abstract could be read): Grad-CAM weights over each channel's salience.

    S^k = sum_c |d(sum_j A^k_j) / dX_c|, L = ReLU(sum_k a_k S^k), a_k the Grad-CAM weights.
    `absolute` (default) costs one backward pass per (input, channel) with a_k != 0 whose
    layer values are not all where its Relu/Clip passes no gradient (S^k = 0 there); without
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
            runs = self._runs(ctx, alpha)
            salience = self._absolute(ctx, runner, output, seed_input, alpha, runs)
            per_input, skipped = np.count_nonzero(runs, axis=1), int(alpha.size - runs.sum())
        else:
            weights = alpha.reshape(*alpha.shape, *[1] * (ctx.activations.ndim - 2))
            seed = np.broadcast_to(weights, ctx.activations.shape).astype(np.float32)
            (dx,) = runner.run(ctx.x, [output], ctx.batch_size, {seed_input: seed})
            salience = dx.sum(axis=1)
            per_input, skipped = np.ones(len(ctx.x), int), 0
        raw = np.maximum(salience, 0).astype(np.float32)
        maps, constant = minmax_normalize(raw, 1e-8)
        metadata = {  # one backward pass per input for alpha, then the salience passes
            **passes(1 + per_input, skipped),
            "absolute": self.absolute,
            "reading": READING,
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, alpha, metadata)

    @staticmethod
    def _runs(ctx: Context, alpha: np.ndarray) -> np.ndarray:
        """(N, K) the channels whose salience needs a backward pass: a_k != 0 and some
        position where the layer's Relu or Clip passes the gradient (elsewhere S^k is 0)."""
        acts = ctx.activations
        open_ = gradient_rules.passes_gradient(ctx.views.info, ctx.views.layer, acts)
        if open_ is None:
            return alpha != 0
        return (alpha != 0) & open_.reshape(*acts.shape[:2], -1).any(axis=-1)

    def _absolute(
        self,
        ctx: Context,
        runner: Runner,
        output: str,
        seed_input: str,
        alpha: np.ndarray,
        runs: np.ndarray,
    ) -> np.ndarray:
        images, channels = np.nonzero(runs)
        salience = np.zeros((len(ctx.x), *ctx.input_size))
        weights = alpha[images, channels]
        layer_shape = ctx.activations.shape[1:]

        def add(dx: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return np.abs(dx).sum(axis=1) * weights[rows].reshape(-1, *[1] * (dx.ndim - 2))

        views, source = ctx.views, graph.model_input(ctx.views.model).name
        shared = len(images) > 0 and ctx.batch_size > 1 and not ctx.fixed_batch
        if shared and views.shares_forward((views.layer,), (source,), ctx.x, layer_shape):
            quiet = not ctx.progress
            bar = tqdm(total=len(images), desc=self.name, unit="pass", disable=quiet, leave=False)
            with bar:  # one input's forward pass under each batch of its seeds
                for image, rows in per_input_batches(images, ctx.batch_size):
                    seeds = np.zeros((len(rows), *layer_shape), np.float32)
                    seeds[np.arange(len(rows)), channels[rows]] = 1.0
                    feeds = {seed_input: seeds}
                    (dx,) = runner.run_batch(ctx.x[image : image + 1], [output], feeds)
                    salience[image] += add(dx, rows).sum(axis=0)
                    bar.update(len(rows))
            return salience

        def accumulate(out: np.ndarray, start: int, stop: int) -> np.ndarray:
            np.add.at(salience, images[start:stop], add(out, np.arange(start, stop)))
            return np.zeros(stop - start)

        perturbation = ChannelSeeds(ctx.x, layer_shape, seed_input, images, channels)
        runner.map_batches(
            perturbation, output, accumulate, ctx.batch_size, ctx.progress, desc=self.name
        )
        return salience
