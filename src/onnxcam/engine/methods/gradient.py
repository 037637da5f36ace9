"""The gradient family (spec §2.1-2.5, §2.15 phase 1): maps from dy^c/dA at the target layer.

Gradients come from the ONNX graph itself (engine/backward): one backward pass of the class
logit, seeded with one-hot rows, through the part of the model after the layer.

- `grad-cam`: w_k = mean_ij G^k. `xgrad-cam`: w_k = sum_ij A^k G^k / (sum_ij A^k + eps).
- `grad-cam++`: profile `pgc` (default; pytorch-grad-cam: a = g^2 / (2 g^2 + sum(A) g^3 + 1e-6),
  0 where g = 0, no normalisation), `official` (the authors' code and tf-keras-vis: alphas
  normalised per channel, zero denominators read as 1), `torchcam` (torchcam as written:
  a = g^2).
- `hires-cam`: L = sum_k G^k * A^k element-wise (ReLU on unless relu=False).
- `layer-cam`: L = ReLU(sum_k ReLU(G^k) * A^k); with `layers=[...]` each layer's map is scaled
  by tanh(2 L / max L), resized to the largest and fused by element-wise max.
- `abs-cam` phase 1 is here (`AbsGradientWeights`); its phase 2 runs masked passes
  (methods/abs_cam.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.engine import backward, graph
from onnxcam.engine.methods.base import (
    ChannelWeightMethod,
    Context,
    Method,
    MethodOutput,
    register,
)
from onnxcam.engine.postprocess import PostProcess, finish_maps
from onnxcam.kernels import resize


def one_hot(targets: np.ndarray, classes: int) -> np.ndarray:
    """(N, classes) seed: 1 at each input's explained class."""
    seed = np.zeros((len(targets), classes), np.float32)
    seed[np.arange(len(targets)), targets] = 1.0
    return seed


def layer_gradients(ctx: Context) -> np.ndarray:
    """G = d y^c / d A at the target layer for every input, (N, K, *s)."""
    seed = one_hot(ctx.targets, ctx.logits.shape[1])
    grads = ctx.views.layer_gradients(ctx.x, ctx.activations, seed, ctx.batch_size)
    return grads.astype(np.float32, copy=False)


def backward_metadata(ctx: Context) -> dict[str, Any]:
    """Pass counts for a gradient method: one backward pass per input."""
    graph_used = "tail" if ctx.views.uses_tail_backward else "full"
    return {
        "passes_run": len(ctx.x),
        "passes_skipped": 0,
        "passes_per_input": [1] * len(ctx.x),
        "backward_graph": graph_used,
    }


def _spatial(a: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, a.ndim))


@register
class GradCAM(ChannelWeightMethod):
    name = "grad-cam"

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        grads = layer_gradients(ctx)
        return grads.mean(axis=_spatial(grads), dtype=np.float64), backward_metadata(ctx)


GRADCAM_PP_PROFILES = ("pgc", "official", "torchcam")


def gradcam_pp_weights(activations: np.ndarray, grads: np.ndarray, profile: str) -> np.ndarray:
    """Grad-CAM++ channel weights (N, K) under one implementation's formula (spec §2.2)."""
    axes = _spatial(grads)
    g = grads.astype(np.float64)
    g2, g3 = g**2, g**3
    sum_a = activations.astype(np.float64).sum(axis=axes, keepdims=True)
    if profile == "torchcam":
        alpha = g2
    elif profile == "pgc":
        alpha = np.where(g != 0, g2 / (2 * g2 + sum_a * g3 + 1e-6), 0.0)
    else:  # official: zero denominators read as 1, alphas normalised per channel
        denominator = 2 * g2 + sum_a * g3
        alpha = g2 / np.where(denominator != 0, denominator, 1.0)
        norm = alpha.sum(axis=axes, keepdims=True)
        alpha = alpha / np.where(norm != 0, norm, 1.0)
    return (alpha * np.maximum(g, 0)).sum(axis=axes)


@register
class GradCAMPlusPlus(ChannelWeightMethod):
    name = "grad-cam++"

    def __init__(self, profile: str = "pgc") -> None:
        if profile not in GRADCAM_PP_PROFILES:
            raise ValueError(
                f"unknown Grad-CAM++ profile {profile!r}: expected {', '.join(GRADCAM_PP_PROFILES)}"
            )
        self.profile = profile

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        weights = gradcam_pp_weights(ctx.activations, layer_gradients(ctx), self.profile)
        return weights, {"profile": self.profile, **backward_metadata(ctx)}


@register
class XGradCAM(ChannelWeightMethod):
    name = "xgrad-cam"

    def __init__(self, eps: float = 1e-7) -> None:
        if not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"eps must be a number >= 0, got {eps!r}")
        self.eps = float(eps)

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        a = ctx.activations.astype(np.float64)
        axes = _spatial(a)
        grads = layer_gradients(ctx)
        weights = (a * grads).sum(axis=axes) / (a.sum(axis=axes) + self.eps)
        return weights, {"eps": self.eps, **backward_metadata(ctx)}


def abs_gradient_weights(grads: np.ndarray) -> np.ndarray:
    """Abs-CAM phase 1: w_k = mean_ij |G^k| (spec §2.15)."""
    return np.abs(grads).mean(axis=_spatial(grads), dtype=np.float64)


@register
class HiResCAM(Method):
    name = "hires-cam"

    def __init__(self, relu: bool = True) -> None:
        if not isinstance(relu, bool):
            raise ValueError(f"relu must be true or false, got {relu!r}")
        self.relu = relu

    def explain(self, ctx: Context) -> MethodOutput:
        signed = (layer_gradients(ctx) * ctx.activations).sum(axis=1)
        raw = np.maximum(signed, 0) if self.relu else signed
        maps, constant = finish_maps(raw.astype(np.float32), ctx.input_size, PostProcess())
        metadata = {"relu": self.relu, "constant_maps": constant.tolist()}
        return MethodOutput(raw, maps, None, {**metadata, **backward_metadata(ctx)})


def layer_cam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """ReLU(sum_k ReLU(G^k) * A^k), (N, *s)."""
    return np.maximum((np.maximum(grads, 0) * activations).sum(axis=1), 0).astype(np.float32)


def fuse_layer_maps(maps: list[np.ndarray], gamma: float = 2.0) -> np.ndarray:
    """LayerCAM's multi-layer fusion: tanh(gamma L / max L) per layer, resized to the largest
    layer (bilinear, align_corners=False), element-wise max."""
    size = max((m.shape[1:] for m in maps), key=lambda s: int(np.prod(s)))
    fused = None
    for m in maps:
        top = m.reshape(len(m), -1).max(axis=1).reshape(-1, *[1] * (m.ndim - 1))
        scaled = np.tanh(gamma * np.divide(m, top, out=np.zeros_like(m), where=top > 0))
        scaled = resize(scaled.astype(np.float32), size) if m.shape[1:] != size else scaled
        fused = scaled if fused is None else np.maximum(fused, scaled)
    return fused.astype(np.float32)


@register
class LayerCAM(Method):
    name = "layer-cam"

    def __init__(self, layers: list[str] | None = None, gamma: float = 2.0) -> None:
        if layers is not None and (
            isinstance(layers, str) or not all(isinstance(name, str) for name in layers)
        ):
            raise ValueError(f"layers must be a list of layer names, got {layers!r}")
        self.layers, self.gamma = layers, float(gamma)

    def explain(self, ctx: Context) -> MethodOutput:
        if not self.layers:
            raw = layer_cam_map(ctx.activations, layer_gradients(ctx))
            maps, constant = finish_maps(raw, ctx.input_size, PostProcess())
            metadata = {"constant_maps": constant.tolist(), **backward_metadata(ctx)}
            return MethodOutput(raw, maps, None, metadata)
        views = ctx.views
        tensors = tuple(graph.resolve_layer(views.model, name) for name in self.layers)
        runner = views.backward((views.logits,), tensors)
        values = [graph.exposed_name(views.model, t) for t in tensors]
        grads = [backward.grad_name(t) for t in tensors]
        feeds = views.score_seed(runner, one_hot(ctx.targets, ctx.logits.shape[1]))
        outputs = runner.run(ctx.x, values + grads, ctx.batch_size, feeds)
        per_layer = [
            layer_cam_map(a, g)
            for a, g in zip(outputs[: len(tensors)], outputs[len(tensors) :], strict=True)
        ]
        raw = fuse_layer_maps(per_layer, self.gamma)
        maps, constant = finish_maps(raw, ctx.input_size, PostProcess())
        metadata = {
            "layers": list(tensors),
            "gamma": self.gamma,
            "constant_maps": constant.tolist(),
            "passes_run": len(ctx.x),
            "passes_skipped": 0,
            "passes_per_input": [1] * len(ctx.x),
            "backward_graph": "full",
        }
        return MethodOutput(raw, maps, None, metadata)
