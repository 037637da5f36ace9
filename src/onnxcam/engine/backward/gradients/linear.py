"""Gemm, MatMul and inference-mode BatchNormalization."""

from __future__ import annotations

from onnxcam.engine.backward.rulesets import GRADIENT


@GRADIENT.register("Gemm")
def gemm(em, node, grads, needs):
    """Y = alpha * op(A) op(B) + beta * C, op = optional transpose."""
    (g,) = grads
    a, b = node.input[:2]
    alpha, beta = em.attr(node, "alpha", 1.0), em.attr(node, "beta", 1.0)
    trans_a, trans_b = em.attr(node, "transA", 0), em.attr(node, "transB", 0)
    ga = gb = gc = None
    if needs[0]:  # dA = alpha g op(B)^T, transposed back when A was
        if trans_a:
            ga = em.op("Gemm", [b, g], alpha=alpha, transA=trans_b, transB=1)
        else:
            ga = em.op("Gemm", [g, b], alpha=alpha, transB=1 - trans_b)
    if needs[1]:  # dB = alpha op(A)^T g, transposed back when B was
        if trans_b:
            gb = em.op("Gemm", [g, a], alpha=alpha, transA=1, transB=trans_a)
        else:
            gb = em.op("Gemm", [a, g], alpha=alpha, transA=1 - trans_a)
    if len(node.input) > 2 and node.input[2] and needs[2]:
        gc = em.unbroadcast(
            em.op("Mul", [g, em.const(beta, like=node.input[2])]), node.input[2], node.output[0]
        )
    return [ga, gb, gc][: len(node.input)]


def _swap_last(em, x):
    rank = em.rank(x)
    perm = [*list(range(rank - 2)), rank - 1, rank - 2]
    return em.op("Transpose", [x], perm=perm)


@GRADIENT.register("MatMul")
def matmul(em, node, grads, needs):
    (g,) = grads
    a, b = node.input
    y = node.output[0]
    if em.rank(a) < 2:
        em.fail("a 1-D first operand is not supported")
    ga = gb = None
    if em.rank(b) == 1:  # y[..., m] = sum_k a[..., m, k] b[k]
        if needs[0]:
            ga = em.op("Mul", [em.unsqueeze(g, [-1]), b])
        if needs[1]:
            gb = em.reduce_sum(
                em.op("Mul", [a, em.unsqueeze(g, [-1])]), list(range(em.rank(a) - 1)), False
            )
        return [ga, gb]
    if needs[0]:
        ga = em.unbroadcast(em.op("MatMul", [g, _swap_last(em, b)]), a, y)
    if needs[1]:
        gb = em.unbroadcast(em.op("MatMul", [_swap_last(em, a), g]), b, y)
    return [ga, gb]


@GRADIENT.register("BatchNormalization")
def batch_norm(em, node, grads, needs):
    """Inference mode: y = (x - mean) * scale / sqrt(var + eps) + bias, per channel."""
    if any(needs[1:]):
        em.fail("the gradient with respect to its statistics is not supported")
    x, scale, _, _, var = node.input[:5]
    if em.attr(node, "training_mode", 0):
        em.fail("training_mode=1 is not supported (export the model in eval mode)")
    eps = em.const(em.attr(node, "epsilon", 1e-5), like=var)
    factor = em.op("Div", [scale, em.op("Sqrt", [em.op("Add", [var, eps])])])
    factor = em.unsqueeze(factor, list(range(1, em.rank(x) - 1)))
    return [em.op("Mul", [grads[0], factor])] + [None] * 4
