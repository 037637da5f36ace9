"""What every method gets (Context) and gives (MethodOutput), and the classes methods extend.

A method is a frozen dataclass of declared options (engine/options.py) with one hook: `explain`
for methods that make maps their own way, or `channel_weights` for CAM-style methods, whose
maps the shared post-processing builds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from onnxcam.engine.methods.parts.channels import top_std_channels
from onnxcam.engine.options import Options
from onnxcam.engine.postprocess import PostProcess, combine
from onnxcam.engine.runner import Runner
from onnxcam.engine.scoring import Scorer
from onnxcam.engine.views import ModelViews
from onnxcam.kernels import map_spread


@dataclass
class Context:
    """One forward pass's worth of state for N inputs."""

    x: np.ndarray  # (N, C, *S) model inputs
    activations: np.ndarray  # (N, K, *s) target-layer output
    logits: np.ndarray  # (N, classes) class scores of the unperturbed inputs
    targets: np.ndarray  # (N,) explained class per input
    views: ModelViews  # the model's graphs: full, tail after the layer, channel-scaled
    batch_size: int
    progress: bool = True
    fixed_batch: bool = False  # the graph only runs batches of batch_size (= 1)
    raw_scores: bool = False  # the scores are a region's or a box's (engine/targets.py)

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.x.shape[2:]

    def tail_batch_size(self, item_shape: tuple[int, ...]) -> int:
        """Items per tail run: as many bytes as batch_size inputs (the tail is cheap)."""
        if self.fixed_batch:
            return self.batch_size
        ratio = np.prod(self.x.shape[1:]) / np.prod(item_shape)
        return int(max(self.batch_size, min(1024, self.batch_size * ratio)))

    @cached_property
    def spread(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) whether each layer map is constant, and its spatial std (kernels.map_spread),
        computed once for the channel choices that read them."""
        return map_spread(self.activations)

    def top_std(self, max_channels: int | None) -> np.ndarray:
        """(N, K) the max_channels channels of largest spatial std per image (`top_std_channels`);
        every channel for None, without computing the spread."""
        if max_channels is None:
            return np.ones(self.activations.shape[:2], bool)
        return top_std_channels(self.spread[1], max_channels)

    @cached_property
    def scorer(self) -> Scorer:
        """Class scores of perturbed inputs through the whole model."""
        return Scorer(
            self.views.full, self.views.logits, self.batch_size, self.progress, raw=self.raw_scores
        )

    @cached_property
    def tail_scorer(self) -> Scorer:
        """Class scores of perturbed activations through the graph's tail after the layer."""
        return self._scorer(self.views.tail, self.activations.shape[1:])

    @cached_property
    def pooled(self) -> tuple[np.ndarray, Scorer] | None:
        """The layer's mean over its positions as the tail's global average pool computes it,
        and the scores of such means through the graph after the pool; None when the tail
        does not start with one (ModelViews.pooled)."""
        if self.views.pooled is None:
            return None
        mean, runner = self.views.pooled
        means = mean.of(self.activations)
        return means, self._scorer(runner, means.shape[1:])

    def _scorer(self, runner: Runner, item_shape: tuple[int, ...]) -> Scorer:
        batch = self.tail_batch_size(item_shape)
        return Scorer(runner, self.views.logits, batch, self.progress, raw=self.raw_scores)


def passes(per_input: Sequence[int] | np.ndarray, skipped: int = 0) -> dict[str, Any]:
    """The pass accounting every result carries: model runs in all, per input, and skipped."""
    counts = [int(p) for p in per_input]
    return {"passes_run": sum(counts), "passes_per_input": counts, "passes_skipped": int(skipped)}


def passes_of(images: np.ndarray, n_images: int, skipped: int = 0) -> dict[str, Any]:
    """Pass accounting from the input index of every pass run."""
    return passes(np.bincount(images, minlength=n_images), skipped)


@dataclass
class MethodOutput:
    raw: np.ndarray  # (N, *s) after ReLU, before resize
    maps: np.ndarray  # (N, *S) in [0, 1]
    weights: np.ndarray | None = None  # (N, K)
    metadata: dict[str, Any] = field(default_factory=dict)
    relevance: np.ndarray | None = None  # (N, C, *S) signed input relevance (LRP)
    instances: np.ndarray | None = None  # (N, M, *S) maps of every target instance (D-RISE)


class Method(Options, ABC):
    """Base class. `name` is the CLI name, `title` the method's own name, `passes` what it runs
    per input (for the listing), `uses_layer` whether the explained layer matters; options are
    the dataclass's declared fields."""

    name: ClassVar[str]
    passes: ClassVar[str] = ""
    #: False for methods that read only the input and the class scores (RISE, occlusion, LRP):
    #: their results name no layer.
    uses_layer: ClassVar[bool] = True
    #: Whether the method differentiates the score (a box target then scores by IoU x class
    #: score, as gradient methods do; perturbation methods score by D-RISE's similarity).
    uses_gradients: ClassVar[bool] = False

    @abstractmethod
    def explain(self, ctx: Context) -> MethodOutput:
        """Maps for every input of the context."""


class ChannelWeightMethod(Method):
    """CAM-style method: L = ReLU(sum_k w_k A^k), post-processed as `post` says."""

    post: ClassVar[PostProcess] = PostProcess()

    @abstractmethod
    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        """(N, K) weights and metadata about how they were obtained."""

    @property
    def post_process(self) -> PostProcess:
        return self.post

    def explain(self, ctx: Context) -> MethodOutput:
        weights, metadata = self.channel_weights(ctx)
        raw, maps, constant = combine(ctx.activations, weights, ctx.input_size, self.post_process)
        metadata["constant_maps"] = constant.tolist()
        return MethodOutput(raw, maps, weights, metadata)
