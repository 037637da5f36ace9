"""AttnLRP's rules for attention (Achtibat et al., "AttnLRP: Attention-Aware Layer-Wise
Relevance Propagation for Transformers", ICML 2024).

- Softmax: its first-order Taylor expansion at the input, R_x = x * (R - s * sum(R)); the
  expansion's bias term takes the rest, which is tallied as absorbed.
- A product of two activations (queries times keys, attention times values): the uniform rule,
  half of R to each operand by its LRP-epsilon share (R_a = a * dz/da * R / stab(z) / 2).

LayerNorm (its standard deviation held) and elementwise activations (passed on) follow the
rules the other composites already give them.
"""

from __future__ import annotations

from onnxcam.engine.backward.relevance import passing
from onnxcam.engine.backward.relevance.linear import ABSORBED
from onnxcam.engine.backward.sweep import Rule

#: Half of every operand's LRP-epsilon share: the two halves make R.
UNIFORM = (passing.Share(0.5, 1.0, 1.0),)


def softmax(em, node, grads, needs):
    """R_x = x * (R - s * sum_axis(R)); what the Taylor expansion's bias takes is absorbed."""
    x, s, r = node.input[0], node.output[0], grads[0]
    axis = em.attr(node, "axis", -1)
    total = em.op("ReduceSum", [r, em.ints([axis])], keepdims=1)
    relevance = em.op("Mul", [x, em.op("Sub", [r, em.op("Mul", [s, total])])])
    em.tally(ABSORBED, em.op("Sub", [r, relevance]))
    return [relevance]


def uniform_rule(stabiliser: float) -> Rule:
    """Half of R to each operand of a product of two activations."""

    def uniform(em, node, grads, needs):
        return passing.split(em, node, grads, needs, [0, 1], UNIFORM, stabiliser)

    return uniform
