"""Abs-CAM (spec §2.15): absolute gradients weight the channels, then masked passes score them.

Phase 1 (the consensus of the re-implementations): w_k = mean_ij |dy^c/dA^k_ij|,
L0 = ReLU(sum_k w_k A^k). Phase 2 is not verified against the paper (its full text could not
be read); the `phase2` option selects the reading:
- `score_channels_weighted` (default): s_k = p^c(X * s(Up(A^k))) for channels with w_k > 0,
  L = ReLU(sum_k s_k w_k A^k), i.e. the gradient weight kept in the combination;
- `score_channels_norm`: L = ReLU(sum_k s_k s(Up(w_k A^k))), the normalised maps summed;
- `none`: phase 1 only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.engine.methods.base import Context, MethodOutput, register
from onnxcam.engine.methods.gradient import (
    abs_gradient_weights,
    backward_metadata,
    layer_gradients,
)
from onnxcam.engine.methods.score_cam import ScoreCAM, ScoreCamProfile, top_std_channels
from onnxcam.engine.postprocess import PostProcess
from onnxcam.kernels import minmax_normalize, resize_normalize

PHASE2 = ("score_channels_weighted", "score_channels_norm", "none")
#: The masked passes of phase 2 score with the softmax probability, no channel softmax.
MASKED_SCORES = ScoreCamProfile(score="prob", channel_softmax=False)
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
class AbsCAM(ScoreCAM):
    name = "abs-cam"

    def __init__(self, phase2: str = "score_channels_weighted", max_channels: int | None = None):
        super().__init__(max_channels=max_channels)
        if phase2 not in PHASE2:
            raise ValueError(f"abs-cam phase2 must be one of {PHASE2}, got {phase2!r}")
        self.phase2 = phase2
        self.profile, self.profile_name, self.post = MASKED_SCORES, "abs-cam", PostProcess()

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        weights = abs_gradient_weights(layer_gradients(ctx))
        metadata: dict[str, Any] = {"phase2": self.phase2, "reading": "spec §2.15, unverified"}
        if self.phase2 == "none":
            return weights, {**metadata, **backward_metadata(ctx)}
        chosen = top_std_channels(ctx.activations, self.max_channels) & (weights > 0)
        scores, passes = self.score_channels(ctx, chosen)
        metadata.update(passes)
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
