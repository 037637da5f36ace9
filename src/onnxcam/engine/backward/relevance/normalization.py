"""LayerNormalization under LRP: the standard deviation held, as conservative propagation does
(Ali et al., ICML 2022; AttnLRP, Achtibat et al., ICML 2024), so the norm is the linear map
y = scale / sigma * (x - mean(x)) + bias, and LRP-epsilon on it gives

    R_x = x * (t - mean(t)),  t = scale / sigma * R / stab(y),

which sums to R times (y - bias) / y: the bias's share is tallied as absorbed."""

from __future__ import annotations

from onnxcam.engine.backward.gradients.normalization import layer_norm_parts
from onnxcam.engine.backward.relevance.linear import ABSORBED, STABILISER, stabilise
from onnxcam.engine.backward.sweep import Rule


def layer_norm_rule(stabiliser: float = STABILISER) -> Rule:
    def layer_norm(em, node, grads, needs):
        if any(needs[1:]):
            em.fail("relevance rules need a constant scale and bias")
        x, y = node.input[0], node.output[0]
        _, inv_std, axes = layer_norm_parts(em, node)
        s = em.op("Div", [grads[0], stabilise(em, y, stabiliser)])
        if len(node.input) > 2 and node.input[2]:
            em.tally(ABSORBED, em.op("Mul", [s, node.input[2]]))
        t = em.op("Mul", [em.op("Mul", [s, node.input[1]]), inv_std])
        centred = em.op("Sub", [t, em.reduce("ReduceMean", t, axes)])
        return [em.op("Mul", [x, centred])] + [None] * (len(node.input) - 1)

    return layer_norm
