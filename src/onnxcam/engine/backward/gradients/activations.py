"""Pointwise activations and Softmax (Gelu and Erf for transformers).

Piecewise-linear activations follow torch autograd at their kinks: ReLU passes the gradient
where x > 0, Clip (ReLU6, hardtanh) where min < x < max, HardSigmoid where 0 < ax+b < 1, and
HardSwish uses torch's three cases, so gradients equal torch's on exported models.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import numpy_helper

from onnxcam.engine.backward.rulesets import GRADIENT
from onnxcam.engine.graph import attributes

GELU_TANH = 0.044715  # y = x / 2 (1 + tanh(sqrt(2 / pi) (x + GELU_TANH x^3)))


def _where(em, condition, value, like, otherwise=None):
    """value where condition holds, else `otherwise` (default 0). Masking by 0 is a product
    with the condition as 0/1 (ORT's CPU Where with a broadcast scalar is the slowest op of a
    CNN's backward graph, several times slower than Mul)."""
    if otherwise is None:
        mask = em.op("Cast", [condition], to=em.specs[like].elem_type)
        return em.op("Mul", [value, mask])
    return em.op("Where", [condition, value, otherwise])


@GRADIENT.register("Relu")
def relu(em, node, grads, needs):
    x = node.input[0]
    return [_where(em, em.op("Greater", [x, em.const(0.0, like=x)]), grads[0], x)]


@GRADIENT.register("LeakyRelu")
def leaky_relu(em, node, grads, needs):
    x, (g,) = node.input[0], grads
    alpha = em.attr(node, "alpha", 0.01)
    scaled = em.op("Mul", [g, em.const(alpha, like=x)])
    return [_where(em, em.op("Greater", [x, em.const(0.0, like=x)]), g, x, scaled)]


def _inside(em, x, low, high):
    """x strictly between low and high (either may be None: unbounded)."""
    parts = []
    if low is not None:
        parts.append(em.op("Greater", [x, low]))
    if high is not None:
        parts.append(em.op("Less", [x, high]))
    return parts[0] if len(parts) == 1 else em.op("And", parts)


@GRADIENT.register("Clip")
def clip(em, node, grads, needs):
    x = node.input[0]
    bounds = [node.input[i] if len(node.input) > i and node.input[i] else None for i in (1, 2)]
    if em.attr(node, "min") is not None or em.attr(node, "max") is not None:  # opset < 11
        bounds = [
            None if em.attr(node, k) is None else em.const(em.attr(node, k), like=x)
            for k in ("min", "max")
        ]
    if bounds == [None, None]:
        return [grads[0], None, None]
    return [_where(em, _inside(em, x, *bounds), grads[0], x), None, None]


@GRADIENT.register("Abs")
def abs_(em, node, grads, needs):
    return [em.op("Mul", [grads[0], em.op("Sign", [node.input[0]])])]


@GRADIENT.register("Sigmoid")
def sigmoid(em, node, grads, needs):
    y = node.output[0]
    slope = em.op("Mul", [y, em.op("Sub", [em.const(1.0, like=y), y])])
    return [em.op("Mul", [grads[0], slope])]


@GRADIENT.register("Tanh")
def tanh(em, node, grads, needs):
    y = node.output[0]
    slope = em.op("Sub", [em.const(1.0, like=y), em.op("Mul", [y, y])])
    return [em.op("Mul", [grads[0], slope])]


@GRADIENT.register("HardSigmoid")
def hard_sigmoid(em, node, grads, needs):
    x = node.input[0]
    alpha, beta = em.attr(node, "alpha", 0.2), em.attr(node, "beta", 0.5)
    z = em.op("Add", [em.op("Mul", [x, em.const(alpha, like=x)]), em.const(beta, like=x)])
    inside = _inside(em, z, em.const(0.0, like=x), em.const(1.0, like=x))
    return [_where(em, inside, em.op("Mul", [grads[0], em.const(alpha, like=x)]), x)]


@GRADIENT.register("HardSwish")
def hard_swish(em, node, grads, needs):
    """torch: 0 for x < -3, g for x > 3, g * (x/3 + 1/2) in between (both ends included)."""
    x, (g,) = node.input[0], grads
    middle = em.op(
        "Mul",
        [g, em.op("Add", [em.op("Mul", [x, em.const(1 / 3, like=x)]), em.const(0.5, like=x)])],
    )
    upper = em.op("Where", [em.op("Greater", [x, em.const(3.0, like=x)]), g, middle])
    return [_where(em, em.op("Less", [x, em.const(-3.0, like=x)]), em.const(0.0, like=x), x, upper)]


@GRADIENT.register("Softmax")
def softmax(em, node, grads, needs):
    y, (g,) = node.output[0], grads
    axis = em.attr(node, "axis", -1) % em.rank(y)
    inner = em.reduce_sum(em.op("Mul", [g, y]), [axis], keepdims=True)
    return [em.op("Mul", [y, em.op("Sub", [g, inner])])]


@GRADIENT.register("LogSoftmax")
def log_softmax(em, node, grads, needs):
    y, (g,) = node.output[0], grads
    axis = em.attr(node, "axis", -1) % em.rank(y)
    total = em.reduce_sum(g, [axis], keepdims=True)
    return [em.op("Sub", [g, em.op("Mul", [em.op("Exp", [y]), total])])]


def _times(em, g, slope):
    return em.op("Mul", [g, slope])


@GRADIENT.register("Erf")
def erf(em, node, grads, needs):
    """d erf(x) / dx = 2 / sqrt(pi) exp(-x^2)."""
    x = node.input[0]
    bell = em.op("Exp", [em.op("Neg", [em.op("Mul", [x, x])])])
    return [_times(em, grads[0], em.op("Mul", [bell, em.const(2 / math.sqrt(math.pi), like=x)]))]


@GRADIENT.register("Gelu")
def gelu(em, node, grads, needs):
    """approximate="none": Phi(x) + x phi(x); "tanh": torch's derivative of its tanh form."""
    x = node.input[0]
    mode = em.attr(node, "approximate", b"none")
    mode = mode.decode() if isinstance(mode, bytes) else mode

    def c(v):
        return em.const(v, like=x)

    if mode == "tanh":
        k = math.sqrt(2 / math.pi)
        x2 = em.op("Mul", [x, x])
        inner = em.op(
            "Mul", [c(k), em.op("Add", [x, em.op("Mul", [c(GELU_TANH), em.op("Mul", [x2, x])])])]
        )
        t = em.op("Tanh", [inner])
        left = em.op("Mul", [c(0.5), em.op("Add", [c(1.0), t])])
        dinner = em.op("Mul", [c(k), em.op("Add", [c(1.0), em.op("Mul", [c(3 * GELU_TANH), x2])])])
        sech2 = em.op("Sub", [c(1.0), em.op("Mul", [t, t])])
        right = em.op("Mul", [em.op("Mul", [c(0.5), x]), em.op("Mul", [sech2, dinner])])
        return [_times(em, grads[0], em.op("Add", [left, right]))]
    cdf = em.op(
        "Mul",
        [c(0.5), em.op("Add", [c(1.0), em.op("Erf", [em.op("Mul", [x, c(1 / math.sqrt(2))])])])],
    )
    pdf = em.op(
        "Mul",
        [
            em.op("Exp", [em.op("Mul", [em.op("Mul", [x, x]), c(-0.5)])]),
            c(1 / math.sqrt(2 * math.pi)),
        ],
    )
    return [_times(em, grads[0], em.op("Add", [cdf, em.op("Mul", [x, pdf])]))]


def passes_gradient(info, tensor: str, values: np.ndarray) -> np.ndarray | None:
    """Where the Relu or Clip that produced `tensor` passes a gradient by the rules above,
    read from its output `values` (y > 0 for Relu, min < y < max for Clip: the same positions
    as the rules' conditions on the input); None for any other producer or unknown bounds."""
    node = info.producers.get(tensor)
    if node is None or node.op_type not in ("Relu", "Clip"):
        return None
    if node.op_type == "Relu":
        return values > 0
    bounds = [attributes(node).get(k) for k in ("min", "max")]  # opset < 11
    for i in (1, 2):
        if len(node.input) > i and node.input[i]:
            constant = info.constant_tensors.get(node.input[i])
            if constant is None:
                return None
            bounds[i - 1] = float(numpy_helper.to_array(constant))
    low, high = (-np.inf if bounds[0] is None else bounds[0]), bounds[1]
    return (values > low) & (values < (np.inf if high is None else high))
