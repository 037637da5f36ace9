"""Gradients at the target layer for the gradient family: one backward pass of the class logit
through the part of the model after the layer, seeded with one-hot rows (engine/backward)."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.engine.methods.base import Context, passes


def one_hot(targets: np.ndarray, classes: int) -> np.ndarray:
    """(N, classes) seed: 1 at each input's explained class."""
    seed = np.zeros((len(targets), classes), np.float32)
    seed[np.arange(len(targets)), targets] = 1.0
    return seed


def spatial_axes(a: np.ndarray) -> tuple[int, ...]:
    """The axes after (N, K): (2, 3) for images, (2,) for series."""
    return tuple(range(2, a.ndim))


def mean_gradients(grads: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Grad-CAM's channel weights: each channel's gradient averaged over its positions."""
    return grads.mean(axis=spatial_axes(grads), dtype=np.float64, keepdims=keepdims)


def score_seed(ctx: Context) -> np.ndarray:
    """(N, classes) seed of a backward graph at the scores: 1 at each input's explained one."""
    return one_hot(ctx.targets, ctx.logits.shape[1])


def layer_gradients(ctx: Context) -> np.ndarray:
    """G = d y^c / d A at the target layer for every input, (N, K, *s)."""
    seed = score_seed(ctx)
    grads = ctx.views.layer_gradients(ctx.x, ctx.activations, seed, ctx.batch_size)
    return grads.astype(np.float32, copy=False)


def backward_passes(ctx: Context, graph_used: str | None = None) -> dict[str, Any]:
    """Pass accounting of one backward pass per input, and which graph ran it."""
    if graph_used is None:
        graph_used = "tail" if ctx.views.uses_tail_backward else "full"
    return {**passes([1] * len(ctx.x)), "backward_graph": graph_used}
