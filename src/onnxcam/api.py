"""The public entry point: an Explainer holds one model, one target layer and one ORT session."""

from __future__ import annotations

import contextlib
import hashlib
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from onnxcam.engine import blas, box_layer, checks, graph, layout, metadata, targets, warmup
from onnxcam.engine.explanation import Explanation
from onnxcam.engine.graph import outputs, tokens
from onnxcam.engine.methods import Context, MethodOutput, create
from onnxcam.engine.methods.parts.relevance import RelevanceMethod
from onnxcam.engine.model_input import ModelInput
from onnxcam.engine.scoring import Scorer
from onnxcam.engine.targets import Target, TargetSpec, resolve_targets
from onnxcam.engine.views import ModelViews
from onnxcam.errors import (
    ArgumentError,
    LayerError,
    ModelError,
    OnnxcamError,
    ProviderError,
    TargetError,
)
from onnxcam.io import InputFormat, choose_preprocess
from onnxcam.io.labels import IMAGENET_CLASSES, imagenet_labels, read_labels
from onnxcam.io.preprocess import override_notice

#: ORT's CPU provider runs CNNs fastest in small batches (activations stay in cache);
#: device providers want large ones. See bench/README.md.
DEFAULT_BATCH_SIZE = {"cpu": 8}
#: Targets whose graphs an Explainer keeps (`region:auto` and `detection:K` bind new masks and
#: boxes for every batch; the graphs of older ones are dropped).
TARGET_VIEWS = 4
#: How an Explainer runs its model: the keyword arguments that the CLI and dataset jobs carry.
RUN_OPTIONS = (
    "layer",
    "provider",
    "batch_size",
    "threads",
    "allow_fallback",
    "input_layout",
    "output",
    "output_kind",
)


class Explainer:
    """Explains one ONNX classifier at one layer.

    model: path, bytes or ModelProto. layer: "auto", a tensor name, or a module path recorded by
    onnxcam's exporters. provider: cpu, cuda, tensorrt, openvino, dml or coreml; a provider that
    is missing or falls back is an error unless allow_fallback. batch_size: inputs per ORT run
    (default 8 on CPU, 64 elsewhere); memory holds two blocks of max(batch_size, 32) inputs.
    input_layout: channels_first or channels_last (Keras); None reads what the exporter
    recorded, else channels_first. Inputs are given in the model's own layout either way.
    labels: class names (a list, or a file: a JSON list or one name a line); None takes those
    the model records, else ImageNet-1k's for a model of 1000 classes (where the
    imagenet-classes package is installed), else none.
    output: the explained output's name (default: the first); output_kind: what it holds where
    its shape cannot tell (engine/graph/outputs.py): class scores are explained for a class, a
    dense map for a region, a detector's raw output for a box (engine/targets.py).
    warm: open the graphs the methods share and run each session a few times at construction,
    so that the first call costs what later ones do (a server's first request); a caller that
    explains once (`onnxcam.explain`, the command line's explain and evaluate) turns it off and
    pays only for what its method opens.
    """

    def __init__(
        self,
        model: str | Path | bytes | onnx.ModelProto,
        layer: str = "auto",
        provider: str = "cpu",
        batch_size: int | None = None,
        threads: int | None = None,
        allow_fallback: bool = False,
        progress: bool = True,
        input_layout: str | None = None,
        labels: str | Path | list[str] | None = None,
        output: str | None = None,
        output_kind: str | None = None,
        warm: bool = True,
    ) -> None:
        provider, batch_size, threads = checked_run_options(provider, batch_size, threads)
        self.labels = read_labels(labels) if isinstance(labels, (str, Path)) else labels
        self.model = graph.load(model)
        self.info = graph.ModelInfo(self.model)
        checks.check_input(self.info.input)
        #: The explained output and what it holds.
        self.output = outputs.choose(self.info, output, output_kind)
        if self.output.name != self.info.model.graph.output[0].name:
            self.model = outputs.with_first_output(self.model, self.output.name)
            self.info = graph.ModelInfo(self.model)
        if self.output.kind == outputs.CLASS_SCORES:
            checks.check_class_scores(self.info)
        fixed = (self.info.input.shape or (None,))[0]
        self.fixed_batch = isinstance(fixed, int)
        if self.fixed_batch:  # a graph exported with a fixed batch runs that batch only
            if fixed != 1:
                raise ModelError(
                    f"the model's input has a fixed batch of {fixed}: expected a dynamic batch "
                    "axis or a batch of 1 (re-export with a dynamic batch)"
                )
            batch_size = 1
        self.input = self.info.input
        self.input_layout = layout.check_layout(input_layout or metadata.stored_layout(self.model))
        layout.check_against_graph(self.model, self.input_layout)
        #: The layer as the user names it, and how its values sit on the input's grid.
        self.layer_info = graph.find_layer(self.info, layer, self.input_layout)
        self.layer = self.layer_info.name
        explained, layer_tensor = self.model, self.layer
        if self.input_layout == layout.CHANNELS_LAST:
            explained, layer_tensor = layout.channels_first(self.model, self.layer)
        elif self.layer_info.grid is not None:  # tokens or a channels-last map: an (N, D, h, w)
            explained, layer_tensor = tokens.as_feature_map(
                self.model, self.info, self.layer, self.layer_info.grid
            )
        self.model_input = ModelInput(self.input, self.input_layout)
        #: Per input shape: the largest tensor the model computes for one input (checked once).
        self._largest: dict[tuple[int, ...], int] = {}
        self._explained, self._layer_tensor = explained, layer_tensor
        #: Box targets choose their own layer where the user left it to `auto` (box_layer.py).
        self._box_layers = (
            layer == "auto"
            and (self.output.is_detections or self.output.decoded is not None)
            and explained is self.model
        )
        self._session_args = (provider, threads, allow_fallback)
        self._target_views: OrderedDict[tuple, ModelViews] = OrderedDict()
        self._layer_shares: dict[tuple, dict[str, float]] = {}
        self.views = ModelViews(
            explained, layer_tensor, provider, threads, allow_fallback, info=self.info
        )
        self.runner = self.views.full
        self.logits_name = self.views.logits
        self.provider = self.runner.provider
        self.batch_size = batch_size
        self.progress = progress
        if warm:
            self._warm()

    def _warm(self) -> None:
        """What the first call would otherwise pay: the kernels loaded, the BLAS libraries
        found, the graph's tail, the graph after its global average pool and the tail's
        backward graph opened (where the layer allows), ImageNet's class names read for a
        model of 1000 classes, and, where the input size is fixed, each of those sessions run
        a few times on zeros (warmup.settle)."""
        warmup.warm_process()
        shape = self.output.shape
        if shape is not None and len(shape) == 2 and shape[1] == IMAGENET_CLASSES:
            imagenet_labels()
        with contextlib.suppress(OnnxcamError):  # a call that needs them says what is wrong
            _ = self.views.tail, self.views.pooled, self.views.uses_tail_backward
            zeros = self._zero_input()
            if zeros is None:
                return
            x = self.validate(zeros)
            warmup.settle(lambda: self.forward(x))
            self.views.settle_tails(*self.forward(x))

    def _zero_input(self) -> np.ndarray | None:
        """One zero input in the model's own layout, where the model fixes its size."""
        shape = self.input.shape
        if shape is None or not all(isinstance(d, int) for d in shape[1:]):
            return None
        return np.zeros((1, *shape[1:]), self.input_dtype)

    def prepare(self, *methods: str) -> None:
        """Build the graphs and sessions of `methods` now (one call each on a zero input), so
        that their first real call costs what later ones do; for servers."""
        zeros = self._zero_input()
        if zeros is None:
            raise ArgumentError("prepare needs a model whose input size is fixed")
        for method in methods:
            self.explain(zeros, method)

    @property
    def scorer(self) -> Scorer:
        """Class scores through the whole model, at the Explainer's batch size (metrics); a
        model whose output is not class scores has none to give."""
        if self.output.kind != outputs.CLASS_SCORES:
            raise ModelError(
                f"metrics score classes: the model's output {self.output.name!r} is "
                f"{self.output.text()}, not class scores (N, K)"
            )
        return Scorer(
            self.runner, self.logits_name, self.batch_size, self.progress, self.model_input
        )

    @property
    def input_dtype(self) -> type:
        """The numpy dtype the model's input takes."""
        return self.model_input.dtype

    @property
    def input_shape(self) -> tuple[graph.Dim, ...] | None:
        """The model's input shape as (N, C, *S), whatever its layout."""
        return self.model_input.shape

    def layers(self) -> list[graph.LayerInfo]:
        """Candidate target layers, the `auto` pick first."""
        return graph.list_layers(self.info, self.input_layout)

    def validate(self, x: np.ndarray) -> np.ndarray:
        """Check rank, size, dtype and finiteness of a batch in the model's own layout; returns it
        channels-first (N, C, *S), the layout of `forward`, the methods and the metrics."""
        return self.model_input.validate(x)

    def input_format(
        self, preprocess: str = "auto", size: str | None = None, resize: str | None = None
    ) -> InputFormat:
        """How files become this model's inputs: `preprocess` a preset name or `auto` (what the
        exporter recorded, else imagenet), `size` HxW for images (default: the model's fixed
        axes; free axes follow each image), `resize` crop, fit or stretch (default: crop where
        the model records a cropping preprocessing, else fit)."""
        stored = metadata.stored_preprocess(self.model)
        chosen = choose_preprocess(preprocess, stored)
        last = self.input_layout == layout.CHANNELS_LAST
        crop = stored is not None and stored.get("crop_fraction", 1.0) < 1.0
        return InputFormat.for_model(self.input_shape, last, chosen, size, resize, crop)

    def class_names(self, n_classes: int) -> list[str] | None:
        """Names of the model's `n_classes` classes: the given labels, else the model's own,
        else ImageNet-1k's for 1000 classes, else None. Given labels of another length are an
        error; recorded ones of another length are ignored."""
        if self.labels is not None:
            if len(self.labels) != n_classes:
                raise ArgumentError(
                    f"labels: expected {n_classes} class names (one per class of the model), "
                    f"got {len(self.labels)}"
                )
            return list(self.labels)
        stored = metadata.stored_labels(self.model)
        if stored is not None and len(stored) == n_classes:
            return stored
        return imagenet_labels() if n_classes == IMAGENET_CLASSES else None

    def preprocess_notice(self, preprocess: str) -> str | None:
        """The line to show when `preprocess` replaces what the exporter recorded, else None."""
        return override_notice(preprocess, metadata.stored_preprocess(self.model))

    def forward(
        self, x: np.ndarray, views: ModelViews | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class scores (N, classes) and target-layer activations (N, K, *s) for a valid
        channels-first batch (what `validate` returns); through a target's `views`, the
        target's scores (N, instances)."""
        views = self.views if views is None else views
        if views is self.views and self.output.kind == outputs.DENSE:
            raise checks.dense_map_error(self.output.name, self.output.shape)
        if views is self.views and self.output.kind != outputs.CLASS_SCORES:
            raise ModelError(
                f"the model's output {self.output.name!r} is {self.output.text()}, not class "
                "scores (N, K): expected a box:CLASS:x1,y1,x2,y2 or detection:K target"
            )
        try:
            logits, activations = views.full.run(
                x, [views.logits, views.layer_output], self.batch_size_for(x.shape)
            )
        except ModelError as err:
            free = self.input.shape is None or not all(
                isinstance(d, int) for d in self.input.shape[2:]
            )
            hint = checks.head_size_hint(self.info, x.shape) if free else ""
            raise ModelError(f"{err}{hint}") from err
        logits = checks.class_scores_2d(logits, views.logits)
        checks.check_finite(logits, "the model's class scores")
        checks.check_layer(activations, self.layer)
        return logits, activations.astype(np.float32, copy=False)

    def batch_size_for(self, shape: tuple[int, ...]) -> int:
        """The batch size for inputs of this (channels-first) shape: batch_size, or less where
        the model's largest tensor is big; the compute is checked once per shape (shape
        inference on the model as it is, in its own layout)."""
        key = tuple(shape[1:])
        if key not in self._largest:
            last = self.input_layout == layout.CHANNELS_LAST
            native = (*key[1:], key[0]) if last else key
            self._largest[key] = checks.check_compute(self.info, (1, *native))
        return checks.batch_size_for(self.batch_size, self._largest[key])

    def bind(self, x: np.ndarray, target: TargetSpec, uses_gradients: bool) -> targets.BoundTarget:
        """A region or box target fixed for the channels-first batch x, from the explained
        output of its unperturbed inputs (boxes scored as the method's family does)."""
        values = self.runner.run(x, list(self.output.reads), self.batch_size_for(x.shape))
        box_score = "iou-score" if uses_gradients else "d-rise"
        return targets.bind(target, self.output, values, box_score)

    def views_for(
        self, bound: targets.BoundTarget, x: np.ndarray, key: tuple | None = None
    ) -> ModelViews:
        """The graphs of the model with the bound target's scores attached, for inputs of the
        channels-first batch x's shape (built once per target and size). Free spatial axes of
        the input are fixed to the size: a detector's anchors follow it, and the backward rules
        of its concatenations and reshapes read their sizes off the graph. A box target under
        `auto` takes the layer its score flows through most (box_layer.py), found on x."""
        key = self._views_key(bound, x) if key is None else key
        if key in self._target_views:
            self._target_views.move_to_end(key)
        else:
            model = graph.with_input_size(bound.attach(self._explained), x.shape)
            layer = self._layer_tensor
            if self._box_layers and bound.boxes is not None:
                shares = self._box_layer_shares(model, bound, x)
                if shares is not None:
                    self._layer_shares[key] = shares
                    layer = box_layer.last_reached(shares)
            self._target_views[key] = ModelViews(
                model, layer, *self._session_args, relevance_start=self.output.name
            )
            while len(self._target_views) > TARGET_VIEWS:  # masks and boxes of past batches
                old, _ = self._target_views.popitem(last=False)
                self._layer_shares.pop(old, None)
        return self._target_views[key]

    def _views_key(self, bound: targets.BoundTarget, x: np.ndarray) -> tuple:
        """A target's graphs are kept per target and input size, and where a box chooses its
        layer (box_layer.py) per batch too: the choice is made on the batch."""
        key = (bound.key, tuple(x.shape[1:]))
        if self._box_layers and bound.boxes is not None:
            digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
            digest.update(np.ascontiguousarray(bound.rows).tobytes())
            key = (*key, digest.hexdigest())
        return key

    def _box_layer_shares(
        self, model: onnx.ModelProto, bound: targets.BoundTarget, x: np.ndarray
    ) -> dict[str, float] | None:
        """Each candidate layer's share of the box's score on x (box_layer.py); None, with a
        warning, where a perturbation method's box has no gradient to choose by (the layer
        `auto` found stays)."""
        rows = np.eye(len(bound.classes), dtype=np.float32)[bound.rows]
        batch = self.batch_size_for(x.shape)
        try:
            return box_layer.contributions(
                model, targets.TARGET_OUTPUT, x, rows, self._session_args, batch
            )
        except LayerError as err:
            if bound.box_score != "d-rise":  # a gradient method needs the gradient anyway
                raise
            warnings.warn(f"{err}; explaining at {self.layer!r}", RuntimeWarning, stacklevel=3)
            return None

    def explain(
        self, x: np.ndarray, method: str = "score-cam", target: Target = None, **options: Any
    ) -> Explanation:
        """Explain a batch x (N, C, H, W) or (N, C, T), or (N, H, W, C) or (N, T, C) for a
        channels-last model, for `target`: None = top-1 class, a class index (one or one per
        input), or a region, box or detection target (engine/targets.py; as text
        `region:C[:mask.png]`, `box:C:x1,y1,x2,y2`, `detection:K`). Maps are (N, H, W) or (N, T)."""
        x = self.validate(x)
        algorithm = create(method, **options)
        started = time.perf_counter()
        spec = targets.parse(target) if isinstance(target, str) else target
        bound, views, key = None, self.views, None
        if isinstance(spec, (targets.Region, targets.Box, targets.Detection)):
            if self.output.decoded is not None and isinstance(algorithm, RelevanceMethod):
                raise TargetError(
                    f"{method} starts relevance at the model's raw output, which decoded "
                    f"detections ({', '.join(self.output.reads)}) hide behind NMS: expected "
                    "a raw detector output (--output) or a gradient or perturbation method"
                )
            bound = self.bind(x, spec, algorithm.uses_gradients)
            key = self._views_key(bound, x)
            views = self.views_for(bound, x, key)
        logits, activations = self.forward(x, views)
        chosen = resolve_targets(spec, logits) if bound is None else bound.rows
        ctx = Context(
            x.astype(np.float32, copy=False),
            activations,
            logits,
            chosen,
            views,
            self.batch_size_for(x.shape),
            self.progress,
            self.fixed_batch,
            raw_scores=bound is not None,
        )
        with blas.single_threaded():
            result = algorithm.explain(ctx)
        check_output(result, method)
        metadata = {
            "provider": self.provider,
            "batch_size": ctx.batch_size,
            "layer_shape": list(activations.shape[1:]),
            "seconds": time.perf_counter() - started,
            **result.metadata,
        }
        layer = self.layer
        if bound is not None:
            metadata["target"] = bound.label
            metadata["target_scores"] = logits[np.arange(len(x)), chosen].tolist()
            shares = self._layer_shares.get(key)
            if shares is not None:  # the layer this box's score flows through most
                layer = views.layer
                metadata["layer_shares"] = shares
        return Explanation(
            result.maps,
            result.raw,
            result.weights,
            chosen,
            logits,
            method,
            layer if algorithm.uses_layer else None,
            metadata,
            relevance=result.relevance,
            class_names=None if bound is not None else self.class_names(logits.shape[1]),
            instances=result.instances,
        )


def checked_run_options(
    provider: str, batch_size: int | None, threads: int | None
) -> tuple[str, int, int | None]:
    """(provider, batch size, threads) checked, the batch size defaulted per provider."""
    if not isinstance(provider, str):
        raise ProviderError(f"provider must be a name such as 'cpu' or 'cuda', got {provider!r}")
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE.get(provider.lower(), 64)
    for name, value in (("batch_size", batch_size), ("threads", threads)):
        if value is None and name == "threads":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ArgumentError(f"{name} must be >= 1, got {value!r} (expected an integer)")
    return provider, int(batch_size), None if threads is None else int(threads)


def check_output(result: MethodOutput, method: str) -> None:
    """Maps finite and in [0, 1], raw maps and relevance finite, before a user sees them."""
    checks.check_finite(result.maps, f"{method}'s maps")
    checks.check_finite(result.raw, f"{method}'s raw maps")
    if result.relevance is not None:
        checks.check_finite(result.relevance, f"{method}'s relevance")
    if result.instances is not None:
        checks.check_finite(result.instances, f"{method}'s instance maps")
    low, high = float(result.maps.min()), float(result.maps.max())
    if low < 0 or high > 1 + 1e-6:
        raise ModelError(f"{method}'s maps lie in [{low:.3g}, {high:.3g}]: expected [0, 1]")


def explain(
    model: str | Path | bytes | onnx.ModelProto,
    x: np.ndarray,
    method: str = "score-cam",
    target: Target = None,
    layer: str = "auto",
    provider: str = "cpu",
    batch_size: int | None = None,
    output: str | None = None,
    **options: Any,
) -> Explanation:
    """One-shot form of Explainer(model, ...).explain(x, ...)."""
    explainer = Explainer(
        model, layer=layer, provider=provider, batch_size=batch_size, output=output, warm=False
    )
    return explainer.explain(x, method=method, target=target, **options)
