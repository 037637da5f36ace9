"""LayerCAM (Jiang et al., IEEE TIP 2021, algorithms §2.4)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine import backward, graph
from onnxcam.engine.methods.base import Context, Method, MethodOutput
from onnxcam.engine.methods.parts.gradients import backward_passes, layer_gradients, score_seed
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import names, number
from onnxcam.engine.postprocess import PostProcess, finish_maps
from onnxcam.kernels import resize


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
    """LayerCAM (Jiang et al., IEEE TIP 2021): positive gradients weight each position.

    L = ReLU(sum_k ReLU(G^k) * A^k). With `layers`, each layer's map is scaled by
    tanh(gamma L / max L), resized to the largest and fused by element-wise max.
    """

    name = "layer-cam"
    uses_gradients = True
    passes = "1 backward"

    layers: tuple[str, ...] | None = names("layers to fuse (None: the explainer's layer)")
    gamma: float = number(2.0, "tanh scaling of each layer's map before the fusion", low=0)

    def explain(self, ctx: Context) -> MethodOutput:
        if self.layers is None:
            raw = layer_cam_map(ctx.activations, layer_gradients(ctx))
            maps, constant = finish_maps(raw, ctx.input_size, PostProcess())
            metadata = {"constant_maps": constant.tolist(), **backward_passes(ctx)}
            return MethodOutput(raw, maps, None, metadata)
        views = ctx.views
        tensors = tuple(graph.resolve_layer(views.info, name) for name in self.layers)
        runner = views.backward((views.logits,), tensors)
        values = [graph.exposed_name(views.model, t) for t in tensors]
        grads = [backward.grad_name(t) for t in tensors]
        feeds = runner.seed_feeds({views.logits: score_seed(ctx)})
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
            **backward_passes(ctx, "full"),
        }
        return MethodOutput(raw, maps, None, metadata)
