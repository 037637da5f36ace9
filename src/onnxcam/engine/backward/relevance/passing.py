"""Relevance through the non-linear and structural ops (the op mapping of algorithms §2.17).

- pass-through: elementwise activations, Dropout, Identity, and a BatchNormalization that
  could not be folded into its Conv/Gemm (zennit's `Pass`);
- winner-take-all: MaxPool, GlobalMaxPool, ReduceMax route relevance like their gradient;
- proportional: pools, reductions and residual Add/Sub/Sum split relevance in proportion to
  each input's share of the output, `R_i = x_i * d y/d x_i * R / stab(y)` (zennit's `Norm`; a
  constant operand, e.g. a bias, keeps its share); Mul/Div by a constant pass it on unchanged;
- structural ops (reshape, transpose, concat, split, slice, pad) move relevance like gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxcam.engine.backward.relevance import gating
from onnxcam.engine.backward.relevance.linear import ABSORBED, STABILISER, stabilise
from onnxcam.engine.backward.rulesets import GRADIENT, RELEVANCE
from onnxcam.engine.backward.sweep import Rule
from onnxcam.engine.graph import attributes

ROUTED = ("MaxPool", "GlobalMaxPool", "ReduceMax")
STRUCTURAL = (
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Split",
    "Slice",
    "Pad",
    "Expand",
    "Cast",
    "CastLike",
    "Gather",
    "GatherElements",
    "Where",
)
PROPORTIONAL = (
    "AveragePool",
    "Resize",
    "GlobalAveragePool",
    "ReduceMean",
    "ReduceSum",
    "Add",
    "Sub",
    "Sum",
    "Mean",
    "Mul",
    "Div",
)


#: Elementwise activations (zennit's `Pass` on its Activation types), and what the sweep treats
#: as the identity: Dropout, and a BatchNormalization that could not be folded.
PASSED = (
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Clip",
    "Elu",
    "Selu",
    "Celu",
    "ThresholdedRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Softplus",
    "Softsign",
    "Shrink",
    "Gelu",
    "Mish",
    "Erf",
    "Exp",
    "Log",
    "Pow",
    "Sqrt",
    "Reciprocal",
    "Dropout",
    "Identity",
    "BatchNormalization",
)


@RELEVANCE.register(*PASSED)
def pass_through(em, node, grads, needs):
    return [grads[0]] + [None] * (len(node.input) - 1)


for _op in ROUTED + STRUCTURAL:
    RELEVANCE.rules[_op] = GRADIENT.rules[_op]


@RELEVANCE.register("Concat")
def concat(em, node, grads, needs):
    """Relevance split back to the parts; a part that does not depend on the input (a class
    token, a register) keeps its share, tallied as absorbed."""
    parts = GRADIENT.rules["Concat"](em, node, grads, [True] * len(node.input))
    for part, need in zip(parts, needs, strict=True):
        if not need:
            em.tally(ABSORBED, part)
    return [part if need else None for part, need in zip(parts, needs, strict=True)]


def absorb_held(em, node, grads) -> None:
    """Relevance reaching a node whose values do not depend on the input (a class token
    expanded to the batch's shape) is what that constant takes: tallied as absorbed."""
    for value in grads:
        if value is not None:
            em.tally(ABSORBED, value)


@RELEVANCE.register("Softmax")
def held(em, node, grads, needs):
    """A softmax inside the model (attention probabilities) is held: nothing passes through."""
    return [None]


ADDITIONS = ("Add", "Sub", "Sum", "Mean")
SCALINGS = ("Mul", "Div")  # by a constant: all of R goes on to the one input


@dataclass(frozen=True)
class Share:
    """One term of a split at a sum: R is shared in proportion to `positive` times each input's
    positive contributions plus `negative` times its negative ones, over the same combination
    of the output's parts, scaled by `weight`; `where` ("Greater", "Less") keeps only outputs
    of that sign. Contributions are the inputs' signed terms in the sum (-b for Sub's b)."""

    weight: float
    positive: float
    negative: float
    where: str | None = None


#: zennit's Norm (LRP-epsilon on the sum): every input's share of the output.
NORM = (Share(1.0, 1.0, 1.0),)
#: The addends that agree in sign with the output share R: the positive contributions where
#: y > 0, the negative ones where y < 0 (the generalised gamma rule as gamma grows). Exactly
#: conservative, never more than R to any input however the addends cancel, and Norm itself
#: where they all have one sign.
SIGN_MATCHED = (Share(1.0, 1.0, 0.0, "Greater"), Share(1.0, 0.0, 1.0, "Less"))


def proportional_rule(stabiliser: float = STABILISER, shares: tuple[Share, ...] = NORM) -> Rule:
    """Split R at a sum, a pool or a reduction by `shares` (zennit's `Norm` by default: R_i =
    x_i * dy/dx_i * R / stab(y)); an addend that does not depend on the input (a bias) takes
    its share, which is tallied as absorbed. Mul and Div pass R on whole to the one input that
    is not a constant or a gate (gating.py); MatMul of two activations splits it among the
    values an attention map weighs."""

    def proportional(em, node, grads, needs):
        if node.op_type in ADDITIONS:
            return split(em, node, grads, needs, range(len(node.input)), shares, stabiliser)
        if node.op_type in SCALINGS or node.op_type == "MatMul":
            value = gating.value_operand(em, node, needs)
            needs = [need and i == value for i, need in enumerate(needs)]
            terms = NORM if node.op_type in SCALINGS else shares
            return split(em, node, grads, needs, [value], terms, stabiliser)
        return split(em, node, grads, needs, [0], shares, stabiliser)

    return proportional


def split(em, node, grads, needs, data, shares, stabiliser) -> list[str | None]:
    """R at the node's output split among its `data` inputs by `shares`; other inputs are held
    (constants, gates, axes)."""
    data = set(data)
    inputs = list(node.input)
    parts = _contributions(em, node, inputs, data, shares)
    relevance: list[str | None] = [None] * len(inputs)
    for share in shares:
        numerators = [
            _combine(em, share, x, parts[i]) if i in data else x for i, x in enumerate(inputs)
        ]
        y = _output(em, node, numerators)
        s = em.op("Div", [grads[0], stabilise(em, y, stabiliser)])
        if share.where is not None:
            zero = em.const(0.0, like=y)
            sign = em.op(share.where, [_output(em, node, inputs), zero])
            s = em.op("Where", [sign, s, zero])
        if share.weight != 1.0:
            s = em.op("Mul", [s, em.const(share.weight, like=y)])
        if node.op_type in ADDITIONS:
            _absorb(em, node, s, numerators, needs)
        gradients = GRADIENT.rules[node.op_type](em, node, [s], needs)
        for i, g in enumerate(gradients):
            if g is None or not needs[i]:
                continue
            term = em.op("Mul", [numerators[i], g])
            relevance[i] = term if relevance[i] is None else em.op("Add", [relevance[i], term])
    return relevance


def _contributions(em, node, inputs, data, shares) -> list[tuple[str, str] | None]:
    """For each data input, the parts whose contributions to the sum are positive and negative:
    (x+, x-), swapped for Sub's subtrahend; only when a share weighs them differently."""
    parts: list[tuple[str, str] | None] = [None] * len(inputs)
    if all(share.positive == share.negative for share in shares):
        return parts
    for i in data:
        pos = em.op("Relu", [inputs[i]])
        neg = em.op("Sub", [inputs[i], pos])
        parts[i] = (neg, pos) if node.op_type == "Sub" and i == 1 else (pos, neg)
    return parts


def _combine(em, share: Share, x: str, parts: tuple[str, str] | None) -> str:
    """An input's numerator under a share: `positive` times its positive-contribution part plus
    `negative` times its negative one (x itself when both are 1)."""
    if share.positive == share.negative:
        return x if share.positive == 1.0 else em.op("Mul", [x, em.const(share.positive, like=x)])
    terms = [
        part if factor == 1.0 else em.op("Mul", [part, em.const(factor, like=x)])
        for part, factor in zip(parts, (share.positive, share.negative), strict=True)
        if factor != 0.0
    ]
    return terms[0] if len(terms) == 1 else em.op("Add", terms)


def _absorb(em, node, s: str, numerators: list[str], needs: list[bool]) -> None:
    """Tally what the constant addends (biases) of a sum take: sum_k s_k y_k of the op on them
    alone."""
    if all(needs):
        return
    alone = [x if not need else em.zeros_like(x) for x, need in zip(numerators, needs, strict=True)]
    em.tally(ABSORBED, em.op("Mul", [s, _output(em, node, alone)]))


def _output(em, node, inputs: list[str]) -> str:
    """The node's op on `inputs` (its own output when they are its inputs)."""
    if list(inputs) == list(node.input):
        return node.output[0]
    return em.op(node.op_type, inputs, **attributes(node))


RELEVANCE.register(*PROPORTIONAL)(proportional_rule())
