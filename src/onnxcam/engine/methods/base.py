"""What every method gets (Context) and gives (MethodOutput), and the registry of methods.

A method is a small class with one hook: `explain` for methods that make maps their own way,
or `channel_weights` for CAM-style methods, whose maps the shared post-processing builds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from onnxcam.engine.postprocess import PostProcess, combine
from onnxcam.engine.runner import Runner
from onnxcam.engine.views import ModelViews


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

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.x.shape[2:]

    @property
    def tail_batch_size(self) -> int:
        """Activations per tail run: as many bytes as batch_size inputs (the tail is cheap)."""
        if self.fixed_batch:
            return self.batch_size
        ratio = np.prod(self.x.shape[1:]) / np.prod(self.activations.shape[1:])
        return int(max(self.batch_size, min(1024, self.batch_size * ratio)))

    @property
    def runner(self) -> Runner:
        """The full model, returning class scores (and the layer)."""
        return self.views.full

    @property
    def logits_name(self) -> str:
        return self.views.logits


def passes_per_input(images: np.ndarray, n_images: int) -> list[int]:
    """Passes each input cost, from the input index of every pass run."""
    return np.bincount(images, minlength=n_images).tolist()


@dataclass
class MethodOutput:
    raw: np.ndarray  # (N, *s) after ReLU, before resize
    maps: np.ndarray  # (N, *S) in [0, 1]
    weights: np.ndarray | None = None  # (N, K)
    metadata: dict[str, Any] = field(default_factory=dict)
    relevance: np.ndarray | None = None  # (N, C, *S) signed input relevance (LRP)


class Method(ABC):
    """Base class: `name` is the CLI name; options come as keyword arguments."""

    name: ClassVar[str]

    @abstractmethod
    def explain(self, ctx: Context) -> MethodOutput:
        """Maps for every input of the context."""


class ChannelWeightMethod(Method):
    """CAM-style method: L = ReLU(sum_k w_k A^k), post-processed as `self.post` says."""

    post: PostProcess = PostProcess()

    @abstractmethod
    def channel_weights(self, ctx: Context) -> tuple[np.ndarray, dict[str, Any]]:
        """(N, K) weights and metadata about how they were obtained."""

    def explain(self, ctx: Context) -> MethodOutput:
        weights, metadata = self.channel_weights(ctx)
        raw, maps, constant = combine(ctx.activations, weights, ctx.input_size, self.post)
        metadata["constant_maps"] = constant.tolist()
        return MethodOutput(raw, maps, weights, metadata)


def positive_int(name: str, value: Any, optional: bool = False) -> Any:
    """Check a count option (None allowed where optional); a clear ValueError otherwise."""
    if optional and value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        allowed = "a positive integer" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


_REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available under its CLI name."""
    _REGISTRY[cls.name] = cls
    return cls


def methods() -> list[str]:
    """Registered method names."""
    return sorted(_REGISTRY)


def create(name: str, **options: Any) -> Method:
    """An instance of the method registered as `name`, with its options."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}: expected one of {', '.join(methods())}")
    try:
        return _REGISTRY[name](**options)
    except TypeError as err:
        raise ValueError(f"bad options for method {name!r}: {err}") from err
