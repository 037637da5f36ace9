"""Score-CAM (Wang et al. 2020): each channel's upsampled, normalised map masks the input, and the
class score of the masked input weights the channel (spec §2.7).

Profiles pin the choices on which implementations disagree:
- `paper` (default): logit score, softmax over channels, masks resized with
  align_corners=False then min-max (eps 1e-8), constant channels skipped with weight 0 and no
  forward pass, combination at layer resolution, ReLU, resize, min-max.
- `pgc`: pytorch-grad-cam's ScoreCAM: masks resized with align_corners=True, constant channels
  forwarded as zero masks (one shared pass per image), min-max (eps 1e-7) before and after resize.
- `official`: the authors' code: softmax probability of the masked input, no channel softmax,
  combination and ReLU at input resolution, min-max without eps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onnxcam.engine.methods.base import ChannelWeightMethod, Context, register
from onnxcam.engine.postprocess import PostProcess
from onnxcam.engine.targets import class_scores
from onnxcam.kernels import masked_inputs


@dataclass(frozen=True)
class ScoreCamProfile:
    score: str = "logit"
    channel_softmax: bool = True
    mask_align_corners: bool = False
    mask_eps: float = 1e-8
    skip_constant: bool = True
    post: PostProcess = field(default_factory=PostProcess)


PROFILES = {
    "paper": ScoreCamProfile(),
    "pgc": ScoreCamProfile(
        mask_align_corners=True,
        skip_constant=False,
        post=PostProcess(eps=1e-7, normalize_before_resize=True),
    ),
    "official": ScoreCamProfile(
        score="prob",
        channel_softmax=False,
        mask_eps=0.0,
        post=PostProcess(eps=0.0, relu_after_resize=True),
    ),
}


class MaskedInputs:
    """Perturbation: X[n] * s(Up(A[n, k])) for each (n, k) item; k = -1 gives a zero input."""

    def __init__(self, x, activations, images, channels, align_corners, eps):
        self.x, self.activations = x, activations
        self.images, self.channels = images, channels
        self.align_corners, self.eps = align_corners, eps
        self.n_items = len(images)
        self.item_shape = x.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        return masked_inputs(
            self.x,
            self.activations,
            self.images[start:stop],
            self.channels[start:stop],
            out,
            self.align_corners,
            self.eps,
        )


def constant_channels(activations: np.ndarray) -> np.ndarray:
    """(N, K) True where a channel's map is constant (its mask would be all zeros)."""
    flat = activations.reshape(activations.shape[0], activations.shape[1], -1)
    return flat.max(axis=-1) <= flat.min(axis=-1)


def channel_softmax(scores: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Softmax over channels per row; channels marked invalid get weight 0."""
    scores = np.asarray(scores, np.float64)
    valid = np.ones(scores.shape, bool) if valid is None else valid
    masked = np.where(valid, scores, -np.inf)
    top = np.max(masked, axis=-1, keepdims=True)
    e = np.where(valid, np.exp(masked - np.where(np.isfinite(top), top, 0)), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@register
class ScoreCAM(ChannelWeightMethod):
    name = "score-cam"

    def __init__(self, profile: str = "paper") -> None:
        if profile not in PROFILES:
            raise ValueError(
                f"unknown Score-CAM profile {profile!r}: expected {', '.join(PROFILES)}"
            )
        self.profile_name = profile
        self.profile = PROFILES[profile]
        self.post = self.profile.post

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.profile
        n_images, n_channels = ctx.activations.shape[:2]
        constant = constant_channels(ctx.activations)
        images, channels = np.nonzero(~constant)
        zero_items = np.zeros(0, np.int64)
        if not p.skip_constant:  # one zero-mask pass per image stands for all its constant channels
            zero_items = np.flatnonzero(constant.any(axis=1))
            images = np.concatenate([images, zero_items])
            channels = np.concatenate([channels, np.full(len(zero_items), -1)])
        classes = ctx.targets[images]
        scores = ctx.runner.map_batches(
            MaskedInputs(
                ctx.x, ctx.activations, images, channels, p.mask_align_corners, p.mask_eps
            ),
            ctx.logits_name,
            lambda out, start, stop: class_scores(out, classes[start:stop], p.score),
            ctx.batch_size,
            ctx.progress,
            desc="score-cam",
        )
        grid = np.zeros((n_images, n_channels))
        n_masked = len(images) - len(zero_items)
        grid[images[:n_masked], channels[:n_masked]] = scores[:n_masked]
        valid = ~constant
        if not p.skip_constant:
            zero_scores = np.zeros(n_images)
            zero_scores[zero_items] = scores[n_masked:]
            grid = np.where(constant, zero_scores[:, None], grid)
            valid = np.ones_like(constant)
        weights = channel_softmax(grid, valid) if p.channel_softmax else np.where(valid, grid, 0.0)
        metadata = {
            "profile": self.profile_name,
            "channels": int(n_channels),
            "passes_run": len(images),
            "passes_skipped": int(n_images * n_channels - len(images)),
        }
        return weights, metadata
