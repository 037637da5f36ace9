"""The graphs the attention methods run on one model, each built and opened once.

`probabilities` runs the model with every block's attention exposed; `gradients` adds the
reverse sweep from the class scores to all of them; `legrad` is one graph per model holding,
for each block, the part of the model from that block's attention to its output followed by a
copy of the model's head, with the reverse sweep from each copy's scores to its own block's
attention only (the tensors the block reads from earlier blocks enter as inputs, so no
gradient reaches earlier attention).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import onnx
from onnx import compose, helper

from onnxcam.engine import backward, graph
from onnxcam.engine.graph import attention
from onnxcam.engine.runner import Runner
from onnxcam.errors import LayerError

#: LeGrad's per-block scores: the head applied to the block's tokens as the model reads its
#: last block (`paper`), or to the mean of all its tokens (`torchcam`).
HEAD_INPUTS = ("torchcam", "paper")


class AttentionViews:
    """Attention probabilities, their gradients and LeGrad's graph for one model."""

    def __init__(self, model: onnx.ModelProto, session_args: tuple) -> None:
        self.model = graph.inline_function_ops(model)
        self.info = graph.ModelInfo(self.model)
        self.logits = self.info.logits
        self._session_args = session_args
        self._legrad: dict[str, tuple[Runner, dict[str, str], list[str]]] = {}
        self._runners: dict[tuple[str, ...], Runner] = {}

    @cached_property
    def _found(self) -> list[attention.Attention]:
        """The blocks' attention, found once per model (a walk over the whole graph)."""
        return attention.find(self.info)

    def blocks(self, method: str) -> list[attention.Attention]:
        """Every block's attention, or a LayerError naming what `method` needs."""
        return attention.require(self._found, method)

    @cached_property
    def _names(self) -> list[str]:
        return [a.name for a in self._found]

    def probabilities(self, x: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """Each block's attention probabilities (N, heads, T, T) for inputs x."""
        return self._exposed(tuple(self._names)).run(x, self._names, batch_size)

    @cached_property
    def _backward(self) -> Runner:
        names = self._names
        model = backward.build(
            self.model, backward.GRADIENT, [self.logits], names, [self.logits, *names]
        )
        return Runner(model, *self._session_args, input_name=graph.model_input(self.model).name)

    def gradients(
        self, x: np.ndarray, seed: np.ndarray, batch_size: int
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(probabilities, d(sum(seed * scores)) / d probabilities) per block, in one run."""
        names = self._names
        runner = self._backward
        wanted = names + [backward.grad_name(n) for n in names]
        values = runner.run(x, wanted, batch_size, runner.seed_feeds({self.logits: seed}))
        return values[: len(names)], values[len(names) :]

    def legrad(
        self, x: np.ndarray, seed: np.ndarray, batch_size: int, head_input: str
    ) -> list[np.ndarray]:
        """Per block l, d s^l_c / d A^l: the class score of block l's tokens through the head,
        differentiated at block l's own attention probabilities."""
        if head_input not in self._legrad:
            self._legrad[head_input] = self._build_legrad(head_input)
        runner, sources, scores = self._legrad[head_input]
        tensors = list(dict.fromkeys(sources.values()))
        values = self._exposed(tuple(tensors)).run(x, tensors, batch_size)
        values = dict(zip(tensors, values, strict=True))
        feeds = {name: values[tensor] for name, tensor in sources.items()}
        first = feeds.pop(runner.input_name)
        feeds |= runner.seed_feeds(dict.fromkeys(scores, seed))
        wanted = [backward.grad_name(_prefixed(i, n)) for i, n in enumerate(self._names)]
        return runner.run(first, wanted, batch_size, feeds)

    def _exposed(self, tensors: tuple[str, ...]) -> Runner:
        if tensors not in self._runners:
            self._runners[tensors] = Runner(graph.expose(self.info, tensors), *self._session_args)
        return self._runners[tensors]

    def _build_legrad(self, head_input: str) -> tuple[Runner, dict[str, str], list[str]]:
        """The merged graph, which model tensor feeds each of its inputs, its score tensors."""
        blocks = self.blocks("legrad")
        if any(b.output is None for b in blocks):
            raise LayerError("legrad reads each block's output: a residual sum of its tokens")
        head = graph.split(self.info, blocks[-1].output, [self.logits])
        if head.crossing:
            raise LayerError(
                "legrad applies the model's head to each block's tokens: expected a head that "
                f"reads only the last block's output, it also reads {head.crossing[0]!r}"
            )
        parts, scores, sources = [], [], {}
        for i, block in enumerate(blocks):
            part = graph.split(self.info, block.name, [block.output])
            sources |= {_prefixed(i, t): t for t in (block.name, *part.crossing)}
            parts.append(compose.add_prefix(part.tail, _prefix(i)))
            parts.append(_head_copy(head.tail, blocks[-1].output, i, block.output, head_input))
            scores.append(_prefix(i, "h") + self.logits)
        merged = _merge(parts, scores, self.model)
        wrt = [_prefixed(i, b.name) for i, b in enumerate(blocks)]
        model = backward.build(merged, backward.GRADIENT, scores, wrt)
        runner = Runner(model, *self._session_args, input_name=wrt[0])
        return runner, sources, scores


def _prefix(block: int, kind: str = "b") -> str:
    return f"onnxcam_{kind}{block}__"


def _prefixed(block: int, name: str) -> str:
    return _prefix(block) + name


def _head_copy(
    head: onnx.ModelProto, reads: str, block: int, output: str, head_input: str
) -> onnx.ModelProto:
    """The head, renamed for `block`, reading the block's output (or the mean of its tokens,
    repeated over the tokens, for `torchcam`)."""
    copy = compose.add_prefix(head, _prefix(block, "h"))
    source, target = _prefixed(block, output), _prefix(block, "h") + reads
    g = copy.graph
    if head_input == "paper":
        bridge = [helper.make_node("Identity", [source], [target])]
    else:
        mean, shape = target + "_mean", target + "_shape"
        bridge = [
            helper.make_node("ReduceMean", [source, target + "_axes"], [mean], keepdims=1),
            helper.make_node("Shape", [source], [shape]),
            helper.make_node("Expand", [mean, shape], [target]),
        ]
        g.initializer.append(
            onnx.numpy_helper.from_array(np.array([1], np.int64), target + "_axes")
        )
    nodes = bridge + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    kept = [i for i in g.input if i.name != target]
    del g.input[:]
    g.input.extend(kept)
    return copy


def _merge(
    parts: list[onnx.ModelProto], outputs: list[str], like: onnx.ModelProto
) -> onnx.ModelProto:
    """One graph of disjoint parts; inputs that another part computes are dropped."""
    produced = {out for part in parts for node in part.graph.node for out in node.output}
    nodes = [node for part in parts for node in part.graph.node]
    inputs = {i.name: i for part in parts for i in part.graph.input if i.name not in produced}
    initializers = [t for part in parts for t in part.graph.initializer]
    out = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs]
    merged = helper.make_graph(nodes, "legrad", list(inputs.values()), out, initializers)
    return helper.make_model(
        merged, opset_imports=list(like.opset_import), ir_version=like.ir_version
    )
