"""Add, Sub, Mul, Div, Pow, Where, Max, Min (with broadcasting), Sum, Mean, Neg, Sqrt,
Reciprocal, Exp, Log, Identity-like ops, Cast."""

from __future__ import annotations

from onnxcam.engine.backward.rulesets import GRADIENT


@GRADIENT.register("Add", "Sub")
def add_sub(em, node, grads, needs):
    (g,) = grads
    a, b = node.input
    ga = em.unbroadcast(g, a, node.output[0]) if needs[0] else None
    gb = None
    if needs[1]:
        gb = em.unbroadcast(g, b, node.output[0])
        if node.op_type == "Sub":
            gb = em.op("Neg", [gb])
    return [ga, gb]


@GRADIENT.register("Mul")
def mul(em, node, grads, needs):
    (g,) = grads
    a, b = node.input
    ga = em.unbroadcast(em.op("Mul", [g, b]), a, node.output[0]) if needs[0] else None
    gb = em.unbroadcast(em.op("Mul", [g, a]), b, node.output[0]) if needs[1] else None
    return [ga, gb]


@GRADIENT.register("Div")
def div(em, node, grads, needs):
    (g,) = grads
    a, b = node.input
    y = node.output[0]
    ga = em.unbroadcast(em.op("Div", [g, b]), a, y) if needs[0] else None
    gb = None
    if needs[1]:  # d(a/b)/db = -a/b^2 = -y/b
        gb = em.unbroadcast(em.op("Neg", [em.op("Div", [em.op("Mul", [g, y]), b])]), b, y)
    return [ga, gb]


@GRADIENT.register("Sum", "Mean")
def sum_mean(em, node, grads, needs):
    (g,) = grads
    if node.op_type == "Mean":
        g = em.op("Mul", [g, em.const(1.0 / len(node.input), like=node.output[0])])
    return [
        em.unbroadcast(g, x, node.output[0]) if need else None
        for x, need in zip(node.input, needs, strict=False)
    ]


@GRADIENT.register("Neg")
def neg(em, node, grads, needs):
    return [em.op("Neg", [grads[0]])]


@GRADIENT.register("Identity", "Dropout")
def identity(em, node, grads, needs):
    """Dropout is the identity at inference (ratio and training_mode inputs get nothing)."""
    return [grads[0]] + [None] * (len(node.input) - 1)


@GRADIENT.register("Cast", "CastLike")
def cast(em, node, grads, needs):
    """The gradient cast back to the input's type (CastLike's target gets nothing)."""
    back = em.op("Cast", [grads[0]], to=em.specs[node.input[0]].elem_type)
    return [back] + [None] * (len(node.input) - 1)


@GRADIENT.register("Expand")
def expand(em, node, grads, needs):
    return [em.unbroadcast(grads[0], node.input[0], node.output[0]), None]


@GRADIENT.register("Pow")
def pow_(em, node, grads, needs):
    """d x^p / dx = p x^(p - 1); the exponent must be a constant (a variable one is refused)."""
    x, p = node.input
    exponent = em.value(p)
    if needs[1] or exponent is None:
        em.fail("the gradient with respect to a computed exponent is not supported")
    exponent = exponent.astype(em.dtype(x))
    power = em.op("Pow", [x, em.const(exponent - 1, like=x)])
    slope = em.op("Mul", [power, em.const(exponent, like=x)])
    return [em.unbroadcast(em.op("Mul", [grads[0], slope]), x, node.output[0]), None]


@GRADIENT.register("Sqrt")
def sqrt(em, node, grads, needs):
    y = node.output[0]
    return [em.op("Div", [grads[0], em.op("Mul", [y, em.const(2.0, like=y)])])]


@GRADIENT.register("Reciprocal")
def reciprocal(em, node, grads, needs):
    y = node.output[0]
    return [em.op("Neg", [em.op("Mul", [grads[0], em.op("Mul", [y, y])])])]


@GRADIENT.register("Exp")
def exp(em, node, grads, needs):
    return [em.op("Mul", [grads[0], node.output[0]])]


@GRADIENT.register("Log")
def log(em, node, grads, needs):
    return [em.op("Div", [grads[0], node.input[0]])]


@GRADIENT.register("Max", "Min")
def max_min(em, node, grads, needs):
    """The gradient goes to the inputs equal to the output, split evenly where several are
    (torch.maximum's and torch.minimum's rule at a tie)."""
    (g,) = grads
    y = node.output[0]
    hits = [em.op("Cast", [em.op("Equal", [x, y])], to=em.float_type) for x in node.input]
    count = hits[0] if len(hits) == 1 else em.op("Sum", hits)
    share = em.op("Div", [g, count])
    return [
        em.unbroadcast(em.op("Mul", [share, hit]), x, y) if need else None
        for x, hit, need in zip(node.input, hits, needs, strict=False)
    ]


@GRADIENT.register("Where")
def where(em, node, grads, needs):
    """The gradient goes to the branch each element was taken from."""
    (g,) = grads
    condition, a, b = node.input
    y = node.output[0]
    zero = em.const(0.0, like=y)
    ga = em.unbroadcast(em.op("Where", [condition, g, zero]), a, y) if needs[1] else None
    gb = em.unbroadcast(em.op("Where", [condition, zero, g]), b, y) if needs[2] else None
    return [None, ga, gb]
