"""The Score-CAM family (spec §2.7-2.10): each channel's upsampled, normalised map masks the
input, and the class score of the masked input weights the channel.

- `score-cam` (Wang et al. 2020). Profiles pin the choices on which implementations disagree:
  `paper` (default): logit score, softmax over channels, masks resized with align_corners=False
  then min-max (eps 1e-8), constant channels skipped with weight 0 and no forward pass,
  combination at layer resolution, ReLU, resize, min-max. `pgc`: pytorch-grad-cam's ScoreCAM,
  masks resized with align_corners=True, constant channels forwarded as zero masks (one shared
  pass per image), min-max (eps 1e-7) before and after resize. `official`: the authors' code,
  softmax probability of the masked input, no channel softmax, combination and ReLU at input
  resolution, min-max without eps.
- `faster-score-cam`: Score-CAM on the `max_channels` channels of largest spatial std per image.
- `ss-cam`: scores averaged over `n_samples` masks with Gaussian noise (sigma) added, seeded per
  (seed, channel, sample) so a map does not depend on batching or provider.
- `is-cam`: scores averaged over `n_steps` scaled masked inputs, `linear` (i/N) or `cumulative`
  (sum_{j<=i} j/N, torchcam) schedule.
Every member takes `max_channels` to trade fidelity for speed. Channels whose normalised maps
are equal (common after ReLU/ReLU6 at 7x7) build equal masked inputs and share one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onnxcam.engine.methods.base import (
    ChannelWeightMethod,
    Context,
    passes_per_input,
    positive_int,
    register,
)
from onnxcam.engine.postprocess import PostProcess
from onnxcam.engine.runner import Perturbation
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
        profile: ScoreCamProfile,
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


def constant_channels(activations: np.ndarray) -> np.ndarray:
    """(N, K) True where a channel's map is constant (its mask would be all zeros)."""
    flat = activations.reshape(activations.shape[0], activations.shape[1], -1)
    return flat.max(axis=-1) <= flat.min(axis=-1)


def top_std_channels(activations: np.ndarray, max_channels: int | None) -> np.ndarray:
    """(N, K) True for the max_channels channels of largest spatial std per image (ties: low k)."""
    n, k = activations.shape[:2]
    if max_channels is None or max_channels >= k:
        return np.ones((n, k), bool)
    if max_channels < 1:
        raise ValueError(f"max_channels must be >= 1, got {max_channels}")
    std = activations.reshape(n, k, -1).std(axis=-1)
    order = np.argsort(-std, axis=1, kind="stable")[:, :max_channels]
    chosen = np.zeros((n, k), bool)
    np.put_along_axis(chosen, order, True, axis=1)
    return chosen


def distinct_maps(
    activations: np.ndarray, images: np.ndarray, channels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Group (image, channel) items whose min-max normalised maps are equal: they build the same
    masked input. Returns the first item of each group (in item order) and each item's group."""
    if len(images) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    flat = activations[images, channels].reshape(len(images), -1).astype(np.float64)
    lo = flat.min(axis=1, keepdims=True)
    normalised = ((flat - lo) / (flat.max(axis=1, keepdims=True) - lo)).astype(np.float32)
    keys = np.concatenate([images[:, None].astype(np.float64), normalised], axis=1)
    _, first, group = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[group.ravel()]


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

    def __init__(self, profile: str = "paper", max_channels: int | None = None) -> None:
        if profile not in PROFILES:
            raise ValueError(
                f"unknown Score-CAM profile {profile!r}: expected {', '.join(PROFILES)}"
            )
        self.profile_name = profile
        self.profile = PROFILES[profile]
        self.post = self.profile.post
        self.max_channels = positive_int("max_channels", max_channels, optional=True)

    #: Masked inputs per channel (samples or integration steps).
    repeats = 1

    def perturbation(self, ctx: Context, images: np.ndarray, channels: np.ndarray) -> Perturbation:
        """The masked inputs for the (image, channel) items, each channel `repeats` times."""
        return MaskedInputs(ctx, images, channels, self.profile)

    #: Whether channels with equal normalised maps may share one pass (their inputs are equal).
    shares_masks = True

    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        return self.score_channels(ctx, top_std_channels(ctx.activations, self.max_channels))

    def score_channels(self, ctx: Context, chosen: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Weights (N, K) from the masked passes of the chosen (N, K) channels."""
        p = self.profile
        acts = ctx.activations
        n_images, n_channels = acts.shape[:2]
        constant = constant_channels(acts)
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
        classes = ctx.targets[run_images]
        scores = ctx.runner.map_batches(
            self.perturbation(ctx, run_images, run_channels),
            ctx.logits_name,
            lambda out, start, stop: class_scores(out, classes[start:stop], p.score),
            ctx.batch_size,
            ctx.progress,
            desc=self.name,
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
        metadata = {
            "profile": self.profile_name,
            "channels": int(n_channels),
            "channels_used": int(valid.sum()),
            "max_channels": self.max_channels,
            "passes_run": len(run_images),
            "passes_per_input": passes_per_input(run_images, n_images),
            "passes_shared": int((len(images) - len(first)) * self.repeats),
            "passes_skipped": int(n_images * n_channels * self.repeats - len(run_images)),
        }
        return weights, metadata


@register
class FasterScoreCAM(ScoreCAM):
    name = "faster-score-cam"

    def __init__(self, max_channels: int = 10, profile: str = "paper") -> None:
        super().__init__(profile=profile, max_channels=max_channels)


@register
class SSCAM(ScoreCAM):
    name = "ss-cam"

    def __init__(
        self,
        n_samples: int = 35,
        sigma: float = 2.0,
        seed: int = 0,
        max_channels: int | None = None,
    ) -> None:
        super().__init__(max_channels=max_channels)
        if not isinstance(sigma, (int, float)) or sigma < 0:
            raise ValueError(f"sigma must be a number >= 0, got {sigma!r}")
        self.repeats, self.sigma, self.seed = positive_int("n_samples", n_samples), sigma, seed

    @property
    def shares_masks(self) -> bool:
        return self.sigma == 0  # noise is drawn per channel: equal maps still differ

    def perturbation(self, ctx: Context, images: np.ndarray, channels: np.ndarray) -> Perturbation:
        samples = np.tile(np.arange(self.repeats), len(images) // self.repeats)
        return MaskedInputs(
            ctx, images, channels, self.profile, samples=samples, sigma=self.sigma, seed=self.seed
        )


SCHEDULES = ("linear", "cumulative")


@register
class ISCAM(ScoreCAM):
    name = "is-cam"

    def __init__(
        self, n_steps: int = 10, schedule: str = "linear", max_channels: int | None = None
    ) -> None:
        super().__init__(max_channels=max_channels)
        n_steps = positive_int("n_steps", n_steps)
        if schedule not in SCHEDULES:
            raise ValueError(f"is-cam schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.repeats, self.schedule = n_steps, schedule

    def coefficients(self) -> np.ndarray:
        """Scale of the masked input at steps 1..N: i/N, or cumulative sum_{j<=i} j/N."""
        steps = np.arange(1, self.repeats + 1) / self.repeats
        return steps if self.schedule == "linear" else np.cumsum(steps)

    def perturbation(self, ctx: Context, images: np.ndarray, channels: np.ndarray) -> Perturbation:
        scales = np.tile(self.coefficients(), len(images) // self.repeats).astype(np.float32)
        return MaskedInputs(ctx, images, channels, self.profile, scales=scales)
