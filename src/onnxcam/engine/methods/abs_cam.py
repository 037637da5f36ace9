"""Abs-CAM (Zeng et al., arXiv 2207.03648, algorithms §2.15; phase 2 in a documented reading)."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.engine.methods.base import Context, MethodOutput
from onnxcam.engine.methods.parts.gradients import backward_passes, layer_gradients, spatial_axes
from onnxcam.engine.methods.parts.masking import MaskProfile, MaskScoring
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice
from onnxcam.kernels import minmax_normalize, resize_normalize

PHASE2 = ("score_channels_weighted", "score_channels_norm", "none")
#: The masked passes of phase 2 score with the softmax probability, no channel softmax.
MASKED_SCORES = MaskProfile(score="prob", channel_softmax=False)
_CHANNEL_CHUNK = 64


def normalised_map_sum(
    activations: np.ndarray, weights: np.ndarray, size: tuple[int, ...]
) -> np.ndarray:
    """sum_k weights[n, k] * s(Up(A[n, k])) at input resolution, (N, *size)."""
    out = np.zeros((len(activations), *size), np.float32)
    for n in range(len(activations)):
        used = np.flatnonzero(weights[n])
        for lo in range(0, len(used), _CHANNEL_CHUNK):
            chunk = used[lo : lo + _CHANNEL_CHUNK]
            maps, _ = resize_normalize(activations[n, chunk], size, False, 1e-8)
            out[n] += np.tensordot(weights[n, chunk].astype(np.float32), maps, axes=1)
    return out


@register
class AbsCAM(MaskScoring):
    """Abs-CAM (Zeng et al., arXiv 2207.03648): absolute gradients weight the channels, then
    masked passes score them.

    Phase 1: w_k = mean_ij |dy^c/dA^k_ij|, L0 = ReLU(sum_k w_k A^k). Phase 2 could not be
    checked against the paper: `score_channels_weighted` (default) s_k = p^c(X * s(Up(A^k)))
    for channels with w_k > 0, L = ReLU(sum_k s_k w_k A^k); `score_channels_norm`
    L = ReLU(sum_k s_k s(Up(w_k A^k))); `none`: phase 1 only.
    """

    name = "abs-cam"
    uses_gradients = True
    passes = "1 backward + channels"

    phase2: str = choice(
        "score_channels_weighted", PHASE2, "the reading of phase 2", what="abs-cam phase2"
    )

    @property
    def profile_name(self) -> str:
        return "abs-cam"

    @property
    def profile_settings(self) -> MaskProfile:
        return MASKED_SCORES

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        grads = layer_gradients(ctx)
        weights = np.abs(grads).mean(axis=spatial_axes(grads), dtype=np.float64)
        reading = "algorithms §2.15, unverified"
        metadata: dict[str, Any] = {"phase2": self.phase2, "reading": reading}
        if self.phase2 == "none":
            return weights, {**metadata, **backward_passes(ctx)}
        chosen = ctx.top_std(self.max_channels) & (weights > 0)
        scores, masked = self.score_channels(ctx, chosen)
        metadata.update(masked)
        metadata["passes_run"] += len(ctx.x)  # the backward passes
        metadata["passes_per_input"] = [p + 1 for p in metadata["passes_per_input"]]
        if self.phase2 == "score_channels_norm":
            return scores, metadata  # combined from normalised maps in explain()
        return scores * weights, metadata

    def explain(self, ctx: Context) -> MethodOutput:
        if self.phase2 != "score_channels_norm":
            return super().explain(ctx)
        scores, metadata = self.channel_weights(ctx)
        combined = np.maximum(normalised_map_sum(ctx.activations, scores, ctx.input_size), 0)
        maps, constant = minmax_normalize(combined, 1e-8)
        metadata["constant_maps"] = constant.tolist()
        return MethodOutput(combined, maps, scores, metadata)
