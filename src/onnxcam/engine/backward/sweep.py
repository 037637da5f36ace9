"""The reverse sweep: walk the forward graph backwards, applying one rule per op.

The sweep is the same for gradients and for relevance propagation; only the rule set differs.
Only nodes between the tensors asked about (`wrt`) and the seeded tensors are visited, so the
head of the model before the target layer and any branch that does not reach the class scores
are never differentiated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import onnx
from onnx import helper

from onnxcam.engine import graph
from onnxcam.engine.backward.emitter import BackwardError, Emitter

#: A rule gets the forward node and the incoming value of each of its outputs (None where
#: nothing flows back) and returns one value per node input (None where nothing flows on).
Rule = Callable[[Emitter, onnx.NodeProto, list[str | None], list[bool]], list[str | None]]
#: Ops of quantized graphs, between which values are integers: nothing can be differentiated.
QUANTIZED_OPS = frozenset(
    ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul")
)
MIN_OPSET = 16  # ScatterElements reduction="add" (MaxPool), axes as inputs everywhere


@dataclass
class RuleSet:
    """Rules by op type, under a name that appears in error messages."""

    name: str
    rules: dict[str, Rule] = field(default_factory=dict)
    #: Called with (emitter, node, incoming values) for a node on the path none of whose float
    #: inputs depends on the input (it reads the input's shape only, as an expanded class
    #: token does); None: the values stop there.
    held: Callable[[Emitter, onnx.NodeProto, list[str | None]], None] | None = None

    def register(self, *op_types: str) -> Callable[[Rule], Rule]:
        def add(rule: Rule) -> Rule:
            for op_type in op_types:
                self.rules[op_type] = rule
            return rule

        return add


def grad_name(tensor: str) -> str:
    """The output name under which the backward graph returns the value at `tensor`."""
    return f"{tensor}__onnxcam_grad"


def tally_name(name: str) -> str:
    """The output under which the backward graph returns the tally `name` (Emitter.tally)."""
    return f"onnxcam_tally__{name}"


def seed_name(tensor: str) -> str:
    """The graph input that seeds the sweep at `tensor` (same shape as the tensor)."""
    return f"{tensor}__onnxcam_seed"


def _on_path(
    model: onnx.ModelProto, wrt: Sequence[str], seeds: Sequence[str]
) -> tuple[list[onnx.NodeProto], set[str]]:
    """Nodes that read (transitively) a wrt tensor and feed (transitively) a seeded tensor."""
    reached = set(wrt)
    forward = []
    for node in model.graph.node:
        if any(name in reached for name in node.input):
            forward.append(node)
            reached.update(node.output)
    needed = set(seeds)
    path = []
    for node in reversed(forward):
        if any(out in needed for out in node.output):
            path.append(node)
            needed.update(i for i in node.input if i in reached)
    return path, reached


def build(
    model: onnx.ModelProto,
    rules: RuleSet,
    seeds: Sequence[str],
    wrt: Sequence[str],
    outputs: Sequence[str] = (),
    tallies: Sequence[str] = (),
) -> onnx.ModelProto:
    """The forward graph plus a reverse sweep from `seeds` to `wrt` under `rules`.

    Inputs: the model's inputs, then one seed per seeded tensor (`seed_name`, same shape).
    Outputs: `outputs` (forward tensors), then the value at each wrt tensor (`grad_name`), then
    each of `tallies` (`tally_name`, (N,) per sample; zeros where no rule added to it).
    """
    model = graph.inline_function_ops(graph.at_least_opset(model, MIN_OPSET, "backward graphs"))
    graph.refuse_subgraphs(model.graph.node, "control flow is not supported in backward graphs")
    path, reached = _on_path(model, wrt, seeds)
    missing = [t for t in seeds if t not in reached and t not in wrt]
    if missing:
        raise BackwardError(f"{missing[0]!r} does not depend on {', '.join(map(repr, wrt))}")
    emitter = Emitter(model)
    incoming: dict[str, list[str]] = {t: [seed_name(t)] for t in seeds}

    def total(tensor: str) -> str | None:
        parts = incoming.get(tensor)
        if not parts:
            return None
        if len(parts) > 1:
            incoming[tensor] = [emitter.op("Sum", parts)]
        return incoming[tensor][0]

    shaped = _shape_only(model, reached)
    for node in path:
        grads = [total(out) for out in node.output]
        if all(g is None for g in grads):
            continue
        needs = [bool(name) and name in reached and name not in shaped for name in node.input]
        floats = [
            need for name, need in zip(node.input, needs, strict=True) if _is_float(emitter, name)
        ]
        if node.op_type in QUANTIZED_OPS:
            raise BackwardError(
                f"no {rules.name} through {node.op_type} (node {node.name or node.output[0]!r}): "
                "a quantized graph's integer tensors carry no gradient; explain the float model"
            )
        if not any(floats):  # it reads the input's shape only: nothing flows on
            if rules.held is not None:
                rules.held(emitter, node, grads)
            continue
        rule = rules.rules.get(node.op_type)
        if rule is None:
            raise BackwardError(
                f"no {rules.name} rule for op {node.op_type} "
                f"(node {node.name or node.output[0]!r}); "
                f"supported: {', '.join(sorted(rules.rules))}"
            )
        emitter.node = node
        results = rule(emitter, node, grads, needs)
        emitter.node = None
        for name, need, value in zip(node.input, needs, results, strict=False):
            if need and value is not None:
                incoming.setdefault(name, []).append(value)
    counted = []
    for name in tallies:
        parts = emitter.tallies.get(name)
        if not parts:  # nothing added: zeros, one per sample
            parts = [emitter.per_sample_sum(emitter.zeros_like(seed_name(seeds[0])))]
        counted.append(parts[0] if len(parts) == 1 else emitter.op("Sum", parts))
    return _assemble(
        model, emitter, seeds, wrt, outputs, total, dict(zip(tallies, counted, strict=True))
    )


def _shape_only(model: onnx.ModelProto, reached: set[str]) -> set[str]:
    """Reached tensors whose values follow only the shapes of reached ones: Shape's and
    Size's outputs and what is computed from them and scalar constants (a detector's anchor
    grid, made with Range over a feature map's size; not a class token expanded to the
    batch, which is a weight). Nothing flows back into them."""
    scalars = {t.name for t in model.graph.initializer if not t.dims}
    scalars |= {
        n.output[0]
        for n in model.graph.node
        if n.op_type == "Constant" and n.attribute and not n.attribute[0].t.dims
    }
    shaped: set[str] = set()
    for node in model.graph.node:
        inputs = [name for name in node.input if name]
        from_shapes = all(n in shaped or (n not in reached and n in scalars) for n in inputs)
        if node.op_type in ("Shape", "Size") or (any(n in shaped for n in inputs) and from_shapes):
            shaped.update(node.output)
    return shaped


def _is_float(emitter: Emitter, name: str) -> bool:
    spec = emitter.specs.get(name)
    return bool(name) and spec is not None and spec.elem_type in graph.FLOAT_TYPES


def _assemble(model, emitter, seeds, wrt, outputs, total, tallies) -> onnx.ModelProto:
    result = copy.deepcopy(model)
    g = result.graph
    specs = emitter.specs
    for tensor in seeds:
        g.input.append(graph.batch_input(seed_name(tensor), specs.get(tensor)))
    finals = []
    for tensor in wrt:
        value = total(tensor)
        if value is None:
            value = emitter.zeros_like(tensor)
        finals.append(value)
    g.node.extend(emitter.nodes)
    g.initializer.extend(emitter.initializers)
    del g.output[:]
    for tensor in outputs:
        name = graph.exposed_name(model, tensor)
        if name != tensor:
            g.node.append(helper.make_node("Identity", [tensor], [name]))
        g.output.append(
            helper.make_tensor_value_info(name, graph.elem_type(specs.get(tensor)), None)
        )
    for tensor, value in zip(wrt, finals, strict=True):
        g.node.append(helper.make_node("Identity", [value], [grad_name(tensor)]))
        g.output.append(
            helper.make_tensor_value_info(
                grad_name(tensor), graph.elem_type(specs.get(tensor)), None
            )
        )
    for name, value in tallies.items():
        g.node.append(helper.make_node("Identity", [value], [tally_name(name)]))
        g.output.append(helper.make_tensor_value_info(tally_name(name), emitter.float_type, None))
    return result
