"""The graphs of one model that an explanation may need, each built and opened once.

`full` is the model with the target layer exposed; `tail` runs from the layer to the class
scores (feature-space methods perturb activations and run only this part), `pooled` from the
global average pool that the tail may start with; `scaled` is the full
model with a per-channel scale on the layer (ablation through the whole model); `backward`
graphs return gradients (engine/backward), cached per (seeded tensors, tensors asked about);
`relevance` graphs return LRP input relevance, cached per composite; `attention` holds the
graphs that read a transformer's attention probabilities.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import onnx

from onnxcam.engine import backward, graph, warmup
from onnxcam.engine.attention_views import AttentionViews
from onnxcam.engine.backward import relevance
from onnxcam.engine.graph.pooling import SpatialMean, after_spatial_mean
from onnxcam.engine.runner import Runner
from onnxcam.errors import LayerError, OnnxcamError


class ModelViews:
    """Full, tail and scaled graphs of one model at one layer, on one provider."""

    def __init__(
        self,
        model: onnx.ModelProto,
        layer: str,
        provider: str = "cpu",
        threads: int | None = None,
        allow_fallback: bool = False,
        info: graph.ModelInfo | None = None,
        relevance_start: str | None = None,
    ) -> None:
        self.model, self.layer = model, layer
        #: Where relevance starts when the scores are a target's written after the model's
        #: output (engine/targets.py): that output, seeded with the target's gradient times
        #: the output (relevance rules are for the model's layers, not the target's arithmetic).
        self.relevance_start = relevance_start
        self.info = info if info is not None and info.model is model else graph.ModelInfo(model)
        self.logits = self.info.logits
        self.layer_output = graph.exposed_name(model, layer)
        self._session_args = (provider, threads, allow_fallback)
        self.full = Runner(graph.expose(self.info, [self.logits, layer]), *self._session_args)

    @cached_property
    def split(self) -> graph.Split:
        return graph.split(self.info, self.layer, [self.logits])

    @cached_property
    def tail(self) -> Runner:
        return Runner(self.split.tail, *self._session_args, input_name=self.layer)

    @cached_property
    def pooled(self) -> tuple[SpatialMean, Runner] | None:
        """The mean over the layer's positions that the tail starts with, and the graph after
        it, or None when the tail reads the layer otherwise (graph/pooling.py)."""
        try:
            split = self.split
        except LayerError:
            return None
        spec = self.info.specs.get(self.layer)
        rank = None if spec is None or spec.shape is None else len(spec.shape)
        found = after_spatial_mean(self.info, split, rank, [self.logits])
        if found is None:
            return None
        mean, after = found
        return mean, Runner(after.tail, *self._session_args, input_name=mean.output)

    @cached_property
    def _head(self) -> Runner:
        return Runner(graph.expose(self.info, list(self.split.crossing)), *self._session_args)

    def crossing(self, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
        """Values of the tensors that cross the cut, for inputs x (computed once per call)."""
        names = list(self.split.crossing)
        if not names:
            return {}
        return dict(zip(names, self._head.run(x, names, batch_size), strict=True))

    @cached_property
    def scaled(self) -> Runner:
        model = graph.scale_channels(self.info, self.layer, graph.CHANNEL_SCALE)
        model = graph.expose(model, [self.logits])  # the class scores may be a Softmax's input
        return Runner(model, *self._session_args, input_name=graph.model_input(self.model).name)

    def backward(self, seeds: tuple[str, ...], wrt: tuple[str, ...]) -> Runner:
        """The full model plus the reverse sweep from `seeds` to `wrt` (built once per pair).

        Outputs: the class scores, then each wrt tensor's forward value (a graph input under
        its exposed name), then `backward.grad_name(t)` for each wrt tensor t.
        """
        key = (seeds, wrt)
        if key not in self._backward:
            outputs = [self.logits, *[t for t in wrt if t != self.logits]]
            model = backward.build(self.model, backward.GRADIENT, seeds, wrt, outputs)
            source = graph.model_input(self.model).name
            self._backward[key] = Runner(model, *self._session_args, input_name=source)
        return self._backward[key]

    @cached_property
    def _backward(self) -> dict[tuple, Runner]:
        return {}

    def shares_forward(
        self, seeds: tuple[str, ...], wrt: tuple[str, ...], x: np.ndarray, seed_shape: tuple
    ) -> bool:
        """Whether `backward(seeds, wrt)` runs one input's forward pass under a batch of seeds
        (ONNX broadcasting carries the forward's batch of 1 over the seeds' batch): checked
        once per input size, on x[:1] with two random seed rows against that input repeated
        twice. An input whose gradients are all zero tells nothing: False, not kept."""
        key = (seeds, wrt, x.shape[1:])
        if key not in self._shares_forward:
            runner = self.backward(seeds, wrt)
            rows = np.random.default_rng(0).standard_normal((2, *seed_shape)).astype(np.float32)
            feeds = {backward.seed_name(s): rows for s in seeds}
            outputs = [backward.grad_name(t) for t in wrt]
            try:
                shared = runner.run_batch(x[:1], outputs, feeds)
                repeated = runner.run_batch(np.repeat(x[:1], 2, axis=0), outputs, feeds)
            except OnnxcamError:  # e.g. a reshape to the forward's own shape: batch 1
                shared, repeated = None, []
            if shared is not None and not any(np.any(r) for r in repeated):
                return False
            self._shares_forward[key] = shared is not None and all(
                a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())
                for a, b in zip(shared, repeated, strict=True)
            )
        return self._shares_forward[key]

    @cached_property
    def _shares_forward(self) -> dict[tuple, bool]:
        return {}

    def relevance(self, composite: relevance.Composite) -> Runner:
        """The model with BatchNorms and per-channel constants folded into their layers
        (relevance.fold_linear_layers) plus an LRP sweep from the class scores to the input under
        `composite` (built once per composite). Outputs: the class scores, then
        `backward.grad_name(input)`, the input relevance, then `backward.tally_name(ABSORBED)`,
        what biases took, per input."""
        key = ("relevance", composite)
        if key not in self._backward:
            start = self.relevance_start or self.logits
            folded = relevance.fold_linear_layers(self.model, [start])
            source = graph.model_input(self.model).name
            model = backward.build(
                folded,
                composite.rules(folded),
                [start],
                [source],
                [start],
                [relevance.ABSORBED],
            )
            self._backward[key] = Runner(model, *self._session_args, input_name=source)
        return self._backward[key]

    @cached_property
    def _tail_backward(self) -> Runner | None:
        """Gradient of the scores at the layer from the tail alone (no head re-run), or None
        when the tail also reads tensors from before the cut."""
        try:
            split = self.split
        except LayerError:
            return None
        if split.crossing:
            return None
        model = backward.build(split.tail, backward.GRADIENT, [self.logits], [self.layer])
        return Runner(model, *self._session_args, input_name=self.layer)

    def settle_tails(self, logits: np.ndarray, activations: np.ndarray) -> None:
        """Run the tail's backward graph and the graph after the pool a few times on one
        input's values (warmup.settle), where the layer has them."""
        tail = self._tail_backward
        if tail is not None:
            feeds = tail.seed_feeds({self.logits: np.zeros_like(logits)})
            name = backward.grad_name(self.layer)
            warmup.settle(lambda: tail.run_batch(activations, [name], feeds))
        if self.pooled is not None:
            mean, pooled = self.pooled
            means = mean.of(activations)
            warmup.settle(lambda: pooled.run_batch(means, [self.logits]))

    @property
    def uses_tail_backward(self) -> bool:
        return self._tail_backward is not None

    def layer_gradients(
        self, x: np.ndarray, activations: np.ndarray, seed: np.ndarray, batch_size: int
    ) -> np.ndarray:
        """d(sum(seed * scores)) / d(layer) for inputs x whose layer values are `activations`.

        seed: (N, classes), e.g. one-hot rows on the explained classes. The tail's backward
        graph is used when the tail needs nothing else from before the cut.
        """
        name = backward.grad_name(self.layer)
        tail = self._tail_backward
        if tail is not None:
            feeds = tail.seed_feeds({self.logits: seed})
            return tail.run(activations, [name], batch_size, feeds)[0]
        runner = self.backward((self.logits,), (self.layer,))
        return runner.run(x, [name], batch_size, runner.seed_feeds({self.logits: seed}))[0]

    def relevance_seed(
        self, runner: Runner, x: np.ndarray, rows: np.ndarray, score: np.ndarray, batch_size: int
    ) -> dict[str, np.ndarray]:
        """The feed that starts relevance for one-hot `rows` (N, classes) whose scores are
        `score` (N,): the score itself at the class scores, or, under a target, the model's
        output times the target's gradient there (for a region, whose score is linear in the
        output, these sum to the score)."""
        if self.relevance_start is None:
            return runner.seed_feeds({self.logits: rows * score[:, None].astype(np.float32)})
        start = self.relevance_start
        gradient = self.backward((self.logits,), (start,))
        names = [graph.exposed_name(self.model, start), backward.grad_name(start)]
        out, grads = gradient.run(x, names, batch_size, gradient.seed_feeds({self.logits: rows}))
        return {backward.seed_name(start): (out * grads).astype(np.float32)}

    @cached_property
    def attention(self) -> AttentionViews:
        """The graphs of the attention methods (rollouts, LeGrad)."""
        return AttentionViews(self.model, self._session_args)
