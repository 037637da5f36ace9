"""Add, Sub, Mul, Div (with broadcasting), Sum, Mean, Neg, Identity-like ops, Cast."""

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


@GRADIENT.register("Cast")
def cast(em, node, grads, needs):
    return [em.op("Cast", [grads[0]], to=em.specs[node.input[0]].elem_type)]


@GRADIENT.register("Expand")
def expand(em, node, grads, needs):
    return [em.unbroadcast(grads[0], node.input[0], node.output[0]), None]
