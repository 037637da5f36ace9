"""Relevance rules of the linear layers (Conv, Gemm, MatMul): LRP-0/epsilon, gamma, alpha-beta,
z+, w^2, flat and z^B (algorithms §2.17), defined as zennit 1.0 defines them.

Every rule is the same trick with different weights: `Z = f_rho(X) + stab`, `S = R / Z`,
`C = f_rho^T(S)` (the gradient rule of the op, run with the modified weights), `R_in = X * C`.
The modified weights (W+ = max(W, 0), W + gamma W+, W^2, ...) are computed here from the
layer's initializer and emitted as constants; the layer's input is the forward activation,
which the backward graph computes anyway.

The rules for signed inputs (z+, alpha-beta, gamma) split the input by sign: a layer's
"positive" contributions are x+ W+ + x- W- (plus b+), its "negative" ones x+ W- + x- W+ (plus
b-). The original rules apply x W+ to x whatever its sign, which on normalised pixels or after
a folded BatchNorm mixes both kinds and lets the denominator vanish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import onnx

from onnxcam.engine import graph
from onnxcam.engine.backward.emitter import Emitter
from onnxcam.engine.backward.rulesets import GRADIENT
from onnxcam.errors import ArgumentError

#: zennit's stabiliser of every rule but epsilon, and of the splits at sums and pools.
STABILISER = 1e-6
#: The tally of the relevance that biases and constant addends take (Emitter.tally).
ABSORBED = "absorbed"


@dataclass
class Layer:
    """One linear node seen by a relevance rule: its input x and its constant weights."""

    em: Emitter
    node: onnx.NodeProto
    x: str
    w: np.ndarray
    b: np.ndarray | None

    @classmethod
    def of(cls, em: Emitter, node: onnx.NodeProto) -> Layer:
        w = em.value(node.input[1])
        if w is None:
            em.fail("relevance rules need constant weights (an initializer) as its second input")
        b = em.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return cls(em, node, node.input[0], w, b)

    @property
    def z(self) -> str:
        """x W + b: the node's own output, which the forward graph computes."""
        return self.node.output[0]

    @cached_property
    def x_pos(self) -> str:
        return self.em.op("Relu", [self.x])

    @cached_property
    def x_neg(self) -> str:
        return self.em.op("Sub", [self.x, self.x_pos])

    def weights(self, value: np.ndarray) -> str:
        """A constant holding modified weights, with its shape known to the emitter."""
        name = self.em.const(value, like=self.x)
        self.em.specs[name] = graph.TensorSpec(name, self.em.specs[self.x].elem_type, value.shape)
        return name

    def forward(self, x: str, w: np.ndarray, b: np.ndarray | None = None) -> str:
        """The node's own op on x with weights w (and bias b, else none)."""
        node, em = self.node, self.em
        attrs = graph.attributes(node)
        inputs = [x, self.weights(w)] + ([] if b is None else [self.weights(b)])
        return em.op(node.op_type, inputs, **attrs)

    def backward(self, s: str, w: np.ndarray) -> str:
        """The transposed op with weights w applied to s (the op's gradient with respect to x)."""
        adjoint = onnx.NodeProto()
        adjoint.CopyFrom(self.node)
        del adjoint.input[2:]
        adjoint.input[1] = self.weights(w)
        return GRADIENT.rules[self.node.op_type](self.em, adjoint, [s], [True, False])[0]

    def ones(self) -> str:
        return self.em.op("Add", [self.em.zeros_like(self.x), self.em.const(1.0, like=self.x)])

    def absorb(self, s: str, b: np.ndarray | None, weight: float = 1.0) -> None:
        """Tally what bias b takes under the ratio s = R / z of its denominator: sum_k s_k b_k."""
        if b is None:
            return
        if self.node.op_type == "Conv":
            term = b.reshape(1, -1, *[1] * (self.em.rank(self.node.output[0]) - 2))
        else:  # Gemm: the op scales its C by beta
            term = b * graph.attributes(self.node).get("beta", 1.0)
        self.em.tally(ABSORBED, _mul(self.em, s, self.em.const(term * weight, like=self.x)))


@dataclass(frozen=True)
class SignSplit:
    """One half of a sign-split rule: x+ goes through `up`, x- through `down`, plus bias `b`."""

    up: np.ndarray
    down: np.ndarray
    b: np.ndarray | None

    def forward(self, layer: Layer) -> str:
        """z = f(x+; up, b) + f(x-; down)."""
        z_up = layer.forward(layer.x_pos, self.up, self.b)
        return layer.em.op("Add", [z_up, layer.forward(layer.x_neg, self.down)])

    def backward(self, layer: Layer, s: str) -> str:
        """x+ f^T(s; up) + x- f^T(s; down)."""
        em = layer.em
        up = _mul(em, layer.x_pos, layer.backward(s, self.up))
        return em.op("Add", [up, _mul(em, layer.x_neg, layer.backward(s, self.down))])


def positive_split(w: np.ndarray, b: np.ndarray | None) -> SignSplit:
    """The positive contributions: x+ W+ + x- W- + b+."""
    return SignSplit(np.maximum(w, 0), np.minimum(w, 0), _pos(b))


def negative_split(w: np.ndarray, b: np.ndarray | None) -> SignSplit:
    """The negative contributions: x+ W- + x- W+ + b-."""
    return SignSplit(np.minimum(w, 0), np.maximum(w, 0), _neg(b))


LinearRule = Callable[[Layer, str], str]


def stabilise(em: Emitter, z: str, epsilon: float, signed: bool = True) -> str:
    """z + epsilon * sign(z) with sign(0) = +1 (zennit), or z + epsilon when not signed."""
    if not signed:
        return em.op("Add", [z, em.const(epsilon, like=z)])
    positive = em.op("GreaterOrEqual", [z, em.const(0.0, like=z)])
    shift = em.op("Where", [positive, em.const(epsilon, like=z), em.const(-epsilon, like=z)])
    return em.op("Add", [z, shift])


def _ratio(layer: Layer, r: str, z: str, epsilon: float, signed: bool = True) -> str:
    return layer.em.op("Div", [r, stabilise(layer.em, z, epsilon, signed)])


def _mul(em: Emitter, a: str, b: str) -> str:
    return em.op("Mul", [a, b])


def _pos(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.maximum(a, 0)


def _neg(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.minimum(a, 0)


def epsilon_rule(epsilon: float = 1e-6, signed: bool = True) -> LinearRule:
    """LRP-epsilon (LRP-0 for a tiny epsilon): R_j = sum_k a_j w_jk / (z_k + eps sign z_k) R_k."""

    def rule(layer: Layer, r: str) -> str:
        s = _ratio(layer, r, layer.z, epsilon, signed)
        layer.absorb(s, layer.b)
        return _mul(layer.em, layer.x, layer.backward(s, layer.w))

    return rule


def zplus_rule(stabiliser: float = STABILISER) -> LinearRule:
    """z+ for signed inputs (alpha1-beta0): the positive contributions x+ W+ + x- W- + b+ share
    R_k: R_j = sum_k (x+_j w+_jk + x-_j w-_jk) / (sum_j' (...) + b+_k) R_k."""

    def rule(layer: Layer, r: str) -> str:
        split = positive_split(layer.w, layer.b)
        s = _ratio(layer, r, split.forward(layer), stabiliser)
        layer.absorb(s, split.b)
        return split.backward(layer, s)

    return rule


def positive_weights_rule(epsilon: float = 1e-9) -> LinearRule:
    """The original z+ of the SR-map code: x W+ over sum x W+ + epsilon, whatever the sign of x,
    bias ignored. Equal to `zplus_rule` for non-negative inputs and no bias."""

    def rule(layer: Layer, r: str) -> str:
        w = np.maximum(layer.w, 0)
        s = _ratio(layer, r, layer.forward(layer.x, w), epsilon, signed=False)
        return _mul(layer.em, layer.x, layer.backward(s, w))

    return rule


def alpha_beta_rule(
    alpha: float = 2.0, beta: float = 1.0, stabiliser: float = STABILISER
) -> LinearRule:
    """LRP-alpha-beta: alpha times the positive contributions' share of R_k minus beta times the
    negative contributions' share (each over its own sum, with b+ and b-)."""
    if not np.isclose(alpha - beta, 1.0):
        raise ArgumentError(f"alpha - beta must be 1, got alpha={alpha}, beta={beta}")

    def rule(layer: Layer, r: str) -> str:
        em = layer.em
        shares = []
        for split, weight in (
            (positive_split(layer.w, layer.b), alpha),
            (negative_split(layer.w, layer.b), -beta),
        ):
            s = _ratio(layer, r, split.forward(layer), stabiliser)
            layer.absorb(s, split.b, weight)
            shares.append(_mul(em, split.backward(layer, s), em.const(weight, like=layer.x)))
        return em.op("Add", shares)

    return rule


def gamma_rule(gamma: float = 0.25, stabiliser: float = STABILISER) -> LinearRule:
    """LRP-gamma generalised to signed inputs and outputs (zennit 1.0): where the output is
    positive, the positive contributions get gamma more weight (x+ (W + gamma W+) + x- (W +
    gamma W-) + b + gamma b+); where it is negative, the negative ones (x+ (W + gamma W-) + x-
    (W + gamma W+) + b + gamma b-). For x >= 0 and z > 0 it is the original rule."""

    def rule(layer: Layer, r: str) -> str:
        em, w, b = layer.em, layer.w, layer.b
        up, down = w + gamma * np.maximum(w, 0), w + gamma * np.minimum(w, 0)
        b_up = None if b is None else b + gamma * np.maximum(b, 0)
        b_down = None if b is None else b + gamma * np.minimum(b, 0)
        zero = em.const(0.0, like=layer.x)
        relevance = []
        for split, where in (
            (SignSplit(up, down, b_up), "Greater"),
            (SignSplit(down, up, b_down), "Less"),
        ):
            s = _ratio(layer, r, split.forward(layer), stabiliser)
            s = em.op("Where", [em.op(where, [layer.z, zero]), s, zero])
            layer.absorb(s, split.b)
            relevance.append(split.backward(layer, s))
        return em.op("Add", relevance)

    return rule


def _input_free(
    weights: Callable[[np.ndarray], np.ndarray],
    bias: Callable[[np.ndarray], np.ndarray] | None,
    stabiliser: float,
) -> LinearRule:
    """Rules that ignore the input's values: R_i = sum_j v_ij / (sum_i' v_i'j + c_j) R_j."""

    def rule(layer: Layer, r: str) -> str:
        v = weights(layer.w)
        c = None if bias is None or layer.b is None else bias(layer.b)
        s = _ratio(layer, r, layer.forward(layer.ones(), v, c), stabiliser)
        layer.absorb(s, c)
        return layer.backward(s, v)

    return rule


def w_square_rule(stabiliser: float = STABILISER) -> LinearRule:
    """w^2 (DTD for unbounded inputs): R_i = sum_j w_ij^2 / (sum_i' w_i'j^2 + b_j^2) R_j."""
    return _input_free(np.square, np.square, stabiliser)


def flat_rule(stabiliser: float = STABILISER) -> LinearRule:
    """flat: relevance spread uniformly over each output's receptive field."""
    return _input_free(np.ones_like, None, stabiliser)


#: Ops that carry the model input's bounds on to the first layer's input unchanged in kind:
#: moves and zero padding, and elementwise affine maps by constants (normalisation in-graph).
BOUND_CARRIERS = frozenset(
    ("Identity", "Cast", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Slice")
).union(("Pad", "Add", "Sub", "Mul", "Div"))


def _carrier_chain(em: Emitter, tensor: str) -> list[onnx.NodeProto] | None:
    """The nodes from the model input to `tensor` if all of them carry bounds, else None."""
    chain, source = [], graph.model_input(em.model).name
    while tensor != source:
        node = em.producer(tensor)
        if node is None or node.op_type not in BOUND_CARRIERS:
            return None
        live = [i for i in node.input if i and not em.is_constant(i)]
        if len(live) != 1 or (node.op_type == "Div" and live[0] != node.input[0]):
            return None
        chain.append(node)
        tensor = live[0]
    return chain[::-1]


def _replay(em: Emitter, chain: list[onnx.NodeProto], value: str) -> str:
    """`value` (shaped like the model input) through the same nodes as the input went."""
    for node in chain:
        inputs = [i if not i or em.is_constant(i) else value for i in node.input]
        value = em.op(node.op_type, inputs, **graph.attributes(node))
    return value


def _bounds(layer: Layer, low, high, widen: bool) -> tuple[str, str]:
    """Per-element bounds of the layer input: `low`, `high` (per channel) are bounds of the
    model input, carried through the moves, zero padding and affine maps between it and the
    layer (else taken at the layer input), then widened to contain x (z^B's premise)."""
    em = layer.em
    chain = _carrier_chain(em, layer.x)
    start = graph.model_input(em.model).name if chain is not None else layer.x
    lo, hi = (_broadcast(em, value, start) for value in (low, high))
    if chain:
        lo, hi = _replay(em, chain, lo), _replay(em, chain, hi)
        lo, hi = em.op("Min", [lo, hi]), em.op("Max", [lo, hi])  # a negative scale swaps them
    if not widen:
        return lo, hi
    return em.op("Min", [lo, layer.x]), em.op("Max", [hi, layer.x])


def _broadcast(em: Emitter, value: float | Sequence[float], like: str) -> str:
    """A per-channel (or single) value expanded to the shape of `like` (channels on axis 1)."""
    array = np.asarray(value, np.float64)
    if array.ndim == 1 and array.size > 1:
        array = array.reshape(1, -1, *[1] * (em.rank(like) - 2))
    return em.op("Expand", [em.const(array, like=like), em.op("Shape", [like])])


def zbox_rule(
    low: float | Sequence[float] = 0.0,
    high: float | Sequence[float] = 1.0,
    stabiliser: float = STABILISER,
    widen: bool = True,
) -> LinearRule:
    """z^B for inputs bounded by low <= x <= high (per channel of the model input): the
    contributions x W - l W+ - h W- share R_k; bias-free, conservative, and never a vanishing
    denominator while the bounds hold (with `widen`, they are widened to x where it leaves
    them)."""

    def rule(layer: Layer, r: str) -> str:
        em, w = layer.em, layer.w
        wp, wn = np.maximum(w, 0), np.minimum(w, 0)
        lo, hi = _bounds(layer, low, high, widen)
        z = em.op(
            "Sub",
            [
                em.op("Sub", [layer.forward(layer.x, w), layer.forward(lo, wp)]),
                layer.forward(hi, wn),
            ],
        )
        s = _ratio(layer, r, z, stabiliser)
        kept = _mul(em, layer.x, layer.backward(s, w))
        lower = _mul(em, lo, layer.backward(s, wp))
        upper = _mul(em, hi, layer.backward(s, wn))
        return em.op("Sub", [em.op("Sub", [kept, lower]), upper])

    return rule
