"""LayerNormalization: y = (x - mean) / sqrt(var + eps) * scale + bias over the trailing axes."""

from __future__ import annotations

from onnxcam.engine.backward.rulesets import GRADIENT


def layer_norm_parts(em, node) -> tuple[str, str, list[int]]:
    """(x_hat, 1 / sigma, the normalised axes) of a LayerNormalization node, recomputed from its
    input: the optional Mean and InvStdDev outputs are rarely written."""
    x = node.input[0]
    rank = em.rank(x)
    axes = list(range(em.attr(node, "axis", -1) % rank, rank))
    mean = em.reduce("ReduceMean", x, axes)
    centred = em.op("Sub", [x, mean])
    var = em.reduce("ReduceMean", em.op("Mul", [centred, centred]), axes)
    eps = em.const(em.attr(node, "epsilon", 1e-5), like=x)
    inv_std = em.op("Reciprocal", [em.op("Sqrt", [em.op("Add", [var, eps])])])
    return em.op("Mul", [centred, inv_std]), inv_std, axes


@GRADIENT.register("LayerNormalization")
def layer_norm(em, node, grads, needs):
    """dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / sigma, g_hat = g * scale."""
    if any(needs[1:]):
        em.fail("the gradient with respect to its scale or bias is not supported")
    x_hat, inv_std, axes = layer_norm_parts(em, node)
    g = em.op("Mul", [grads[0], node.input[1]])
    centred = em.op("Sub", [g, em.reduce("ReduceMean", g, axes)])
    along = em.reduce("ReduceMean", em.op("Mul", [g, x_hat]), axes)
    dx = em.op("Mul", [em.op("Sub", [centred, em.op("Mul", [x_hat, along])]), inv_std])
    return [dx] + [None] * (len(node.input) - 1)
