"""Masked inputs and their scores, shared by the Score-CAM family and Abs-CAM: each chosen
channel's upsampled, normalised map masks the input, and the class score of the masked input
weights the channel (algorithms §2.7-2.10).

The choices on which implementations disagree are a `MaskProfile`: the score (logit or
probability), the softmax over channels, the mask's resampling grid and epsilon, whether
constant channels are skipped, and the final post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from onnxcam.engine.methods.base import ChannelWeightMethod, Context, passes_of
from onnxcam.engine.methods.parts.channels import (
    MASK_EPS,
    channel_softmax,
    distinct_maps,
)
from onnxcam.engine.options import integer
from onnxcam.engine.postprocess import PostProcess
from onnxcam.engine.runner import Perturbation
from onnxcam.kernels import masked_inputs


@dataclass(frozen=True)
class MaskProfile:
    score: str = "logit"
    channel_softmax: bool = True
    mask_align_corners: bool = False
    mask_eps: float = MASK_EPS
    skip_constant: bool = True
    post: PostProcess = field(default_factory=PostProcess)


class MaskedInputs(Perturbation):
    """Item i: X[n_i] * (s(Up(A[n_i, k_i])) + noise_i) * scale_i; k_i = -1 gives a zero mask.

    noise_i is drawn from (seed, k_i, sample_i) when sigma > 0, so it does not depend on the
    image or the batch the item falls in.
    """

    def __init__(
        self,
        ctx: Context,
        images: np.ndarray,
        channels: np.ndarray,
        profile: MaskProfile,
        scales: np.ndarray | None = None,
        samples: np.ndarray | None = None,
        sigma: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.x, self.activations = ctx.x, ctx.activations
        self.images, self.channels = images, channels
        self.profile, self.scales = profile, scales
        self.samples, self.sigma, self.seed = samples, sigma, seed
        self.n_items = len(images)
        self.item_shape = ctx.x.shape[1:]

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = masked_inputs(
            self.x,
            self.activations,
            self.images[start:stop],
            self.channels[start:stop],
            out,
            self.profile.mask_align_corners,
            self.profile.mask_eps,
        )
        if self.sigma > 0:
            for b, i in enumerate(range(start, stop)):
                rng = np.random.default_rng(
                    (self.seed, int(self.channels[i]), int(self.samples[i]))
                )
                noise = rng.standard_normal(self.item_shape[1:], dtype=np.float32) * self.sigma
                batch[b] += self.x[self.images[i]] * noise
        if self.scales is not None:
            batch *= self.scales[start:stop].reshape(-1, *[1] * len(self.item_shape))
        return batch


@dataclass(frozen=True, kw_only=True, eq=False)
class MaskScoring(ChannelWeightMethod):
    """Channel weights from masked passes. Subclasses say how many masked inputs a channel gets
    (`repeats`), how they are built (`perturbation`) and under which `profile`."""

    max_channels: int | None = integer(
        None, "use only this many channels of largest spatial std per image (None: all)", low=1
    )

    #: Whether channels with equal normalised maps may share one pass (their inputs are equal).
    shares_masks: ClassVar[bool] = True

    @property
    def profile_name(self) -> str:
        return "paper"

    @property
    def profile_settings(self) -> MaskProfile:
        return MaskProfile()

    @property
    def post_process(self) -> PostProcess:
        return self.profile_settings.post

    @property
    def repeats(self) -> int:
        """Masked inputs per channel (samples or integration steps)."""
        return 1

    def perturbation(self, ctx: Context, images: np.ndarray, channels: np.ndarray) -> Perturbation:
        """The masked inputs for the (image, channel) items, each channel `repeats` times."""
        return MaskedInputs(ctx, images, channels, self.profile_settings)

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        return self.score_channels(ctx, ctx.top_std(self.max_channels))

    def score_channels(self, ctx: Context, chosen: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Weights (N, K) from the masked passes of the chosen (N, K) channels."""
        p = self.profile_settings
        acts = ctx.activations
        n_images, n_channels = acts.shape[:2]
        constant = ctx.spread[0]
        valid = chosen & ~constant
        images, channels = np.nonzero(valid)
        if self.shares_masks:
            first, group = distinct_maps(acts, images, channels)
        else:
            first = group = np.arange(len(images))
        run_images = np.repeat(images[first], self.repeats)
        run_channels = np.repeat(channels[first], self.repeats)
        zero_items = np.zeros(0, np.int64)
        if not p.skip_constant:  # one zero-mask pass per image stands for all its constant channels
            zero_items = np.flatnonzero((constant & chosen).any(axis=1))
            run_images = np.concatenate([run_images, zero_items])
            run_channels = np.concatenate([run_channels, np.full(len(zero_items), -1)])
        scores = ctx.scorer.score(
            self.perturbation(ctx, run_images, run_channels),
            ctx.targets[run_images],
            p.score,
            self.name,
        )
        n_masked = len(run_images) - len(zero_items)
        grid = np.zeros((n_images, n_channels))
        grid[images, channels] = scores[:n_masked].reshape(-1, self.repeats).mean(axis=1)[group]
        if not p.skip_constant:
            zero_scores = np.zeros(n_images)
            zero_scores[zero_items] = scores[n_masked:]
            grid = np.where(constant, zero_scores[:, None], grid)
            valid = chosen
        weights = channel_softmax(grid, valid) if p.channel_softmax else np.where(valid, grid, 0.0)
        skipped = n_images * n_channels * self.repeats - len(run_images)
        metadata = {
            "profile": self.profile_name,
            "channels": int(n_channels),
            "channels_used": int(valid.sum()),
            "max_channels": self.max_channels,
            **passes_of(run_images, n_images, skipped),
            "passes_shared": int((len(images) - len(first)) * self.repeats),
        }
        return weights, metadata
