"""Relevance rules of the linear layers (Conv, Gemm, MatMul): LRP-0/epsilon, gamma, alpha-beta,
z+, w^2, flat and z^B (spec §2.17).

Every rule is the same trick with different weights: `Z = f_rho(X) + stab`, `S = R / Z`,
`C = f_rho^T(S)` (the gradient rule of the op, run with the modified weights), `R_in = X * C`.
The modified weights (W+ = max(W, 0), W + gamma W+, W^2, ...) are computed here from the
layer's initializer and emitted as constants; the layer's input is the forward activation,
which the backward graph computes anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from onnxcam.engine import graph
from onnxcam.engine.backward.emitter import Emitter
from onnxcam.engine.backward.rulesets import GRADIENT
from onnxcam.errors import ArgumentError


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


def epsilon_rule(epsilon: float = 1e-6, bias: bool = True, signed: bool = True) -> LinearRule:
    """LRP-epsilon (LRP-0 for a tiny epsilon): R_j = sum_k a_j w_jk / (z_k + eps sign z_k) R_k."""

    def rule(layer: Layer, r: str) -> str:
        z = layer.forward(layer.x, layer.w, layer.b if bias else None)
        s = _ratio(layer, r, z, epsilon, signed)
        return _mul(layer.em, layer.x, layer.backward(s, layer.w))

    return rule


def gamma_rule(gamma: float = 0.25, epsilon: float = 1e-6) -> LinearRule:
    """LRP-gamma: w + gamma w+ (and b + gamma b+) in numerator and denominator."""

    def rule(layer: Layer, r: str) -> str:
        w = layer.w + gamma * np.maximum(layer.w, 0)
        b = None if layer.b is None else layer.b + gamma * np.maximum(layer.b, 0)
        s = _ratio(layer, r, layer.forward(layer.x, w, b), epsilon)
        return _mul(layer.em, layer.x, layer.backward(s, w))

    return rule


def zplus_rule(epsilon: float = 1e-9, signed: bool = True) -> LinearRule:
    """z+: R_j = sum_k a_j w+_jk / sum_j' a_j' w+_j'k R_k, bias ignored (tutorial, SR code)."""

    def rule(layer: Layer, r: str) -> str:
        w = np.maximum(layer.w, 0)
        s = _ratio(layer, r, layer.forward(layer.x, w), epsilon, signed)
        return _mul(layer.em, layer.x, layer.backward(s, w))

    return rule


def alpha_beta_rule(alpha: float = 2.0, beta: float = 1.0, epsilon: float = 1e-6) -> LinearRule:
    """LRP-alpha-beta with zennit's split: x+w+ + x-w- (and b+) is the positive part,
    x+w- + x-w+ (and b-) the negative one."""
    if not np.isclose(alpha - beta, 1.0):
        raise ArgumentError(f"alpha - beta must be 1, got alpha={alpha}, beta={beta}")

    def rule(layer: Layer, r: str) -> str:
        em, w, b = layer.em, layer.w, layer.b
        xp = em.op("Relu", [layer.x])
        xn = em.op("Sub", [layer.x, xp])
        wp, wn = np.maximum(w, 0), np.minimum(w, 0)
        z_pos = em.op("Add", [layer.forward(xp, wp, _pos(b)), layer.forward(xn, wn)])
        z_neg = em.op("Add", [layer.forward(xp, wn, _neg(b)), layer.forward(xn, wp)])
        s_pos, s_neg = _ratio(layer, r, z_pos, epsilon), _ratio(layer, r, z_neg, epsilon)
        positive = em.op(
            "Add",
            [_mul(em, xp, layer.backward(s_pos, wp)), _mul(em, xn, layer.backward(s_pos, wn))],
        )
        negative = em.op(
            "Add",
            [_mul(em, xp, layer.backward(s_neg, wn)), _mul(em, xn, layer.backward(s_neg, wp))],
        )
        return em.op(
            "Sub",
            [
                _mul(em, positive, em.const(alpha, like=layer.x)),
                _mul(em, negative, em.const(beta, like=layer.x)),
            ],
        )

    return rule


def _input_free(weights: Callable[[np.ndarray], np.ndarray], epsilon: float) -> LinearRule:
    """Rules that ignore the input's values: R_i = sum_j v_ij / sum_i' v_i'j R_j."""

    def rule(layer: Layer, r: str) -> str:
        v = weights(layer.w)
        s = _ratio(layer, r, layer.forward(layer.ones(), v), epsilon)
        return layer.backward(s, v)

    return rule


def w_square_rule(epsilon: float = 1e-9) -> LinearRule:
    """w^2 (DTD for unbounded inputs): R_i = sum_j w_ij^2 / sum_i' w_i'j^2 R_j."""
    return _input_free(np.square, epsilon)


def flat_rule(epsilon: float = 1e-9) -> LinearRule:
    """flat: relevance spread uniformly over each output's receptive field."""
    return _input_free(np.ones_like, epsilon)


def _bound(layer: Layer, value: float | Sequence[float]) -> str:
    """A per-channel bound broadcast to the layer input's shape."""
    em = layer.em
    array = np.asarray(value, np.float64)
    if array.ndim == 1 and array.size > 1:
        array = array.reshape(1, -1, *[1] * (em.rank(layer.x) - 2))
    return em.op("Expand", [em.const(array, like=layer.x), em.op("Shape", [layer.x])])


def zbox_rule(
    low: float | Sequence[float] = 0.0, high: float | Sequence[float] = 1.0, epsilon: float = 1e-6
) -> LinearRule:
    """z^B for inputs bounded by low <= x <= high (per channel): bias-free, conservative."""

    def rule(layer: Layer, r: str) -> str:
        em, w = layer.em, layer.w
        wp, wn = np.maximum(w, 0), np.minimum(w, 0)
        lo, hi = _bound(layer, low), _bound(layer, high)
        z = em.op(
            "Sub",
            [
                em.op("Sub", [layer.forward(layer.x, w), layer.forward(lo, wp)]),
                layer.forward(hi, wn),
            ],
        )
        s = _ratio(layer, r, z, epsilon)
        kept = _mul(em, layer.x, layer.backward(s, w))
        lower = _mul(em, lo, layer.backward(s, wp))
        upper = _mul(em, hi, layer.backward(s, wn))
        return em.op("Sub", [em.op("Sub", [kept, lower]), upper])

    return rule
