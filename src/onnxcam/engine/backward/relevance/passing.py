"""Relevance through the non-linear and structural ops (the op mapping of spec §2.17).

- pass-through: ReLU-like activations, Dropout, Identity, and a BatchNormalization that could
  not be folded into its Conv/Gemm (zennit's default `Pass`);
- winner-take-all: MaxPool, GlobalMaxPool, ReduceMax route relevance like their gradient;
- proportional: pools, reductions and residual Add/Sub/Sum split relevance in proportion to
  each input's share of the output, `R_i = x_i * d y/d x_i * R / y` (a constant operand, e.g.
  a bias, keeps its share); Mul/Div by a constant pass relevance on unchanged;
- structural ops (reshape, transpose, concat, split, slice, pad) move relevance like gradients.
"""

from __future__ import annotations

from onnxcam.engine.backward.relevance.linear import stabilise
from onnxcam.engine.backward.rulesets import GRADIENT, RELEVANCE

#: Stabiliser of the proportional splits (sign-aware, as zennit's Norm rule).
SPLIT_EPSILON = 1e-9

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
)
PROPORTIONAL = (
    "AveragePool",
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


@RELEVANCE.register("Relu", "LeakyRelu", "Clip", "Dropout", "Identity", "BatchNormalization")
def pass_through(em, node, grads, needs):
    return [grads[0]] + [None] * (len(node.input) - 1)


for _op in ROUTED + STRUCTURAL:
    RELEVANCE.rules[_op] = GRADIENT.rules[_op]


@RELEVANCE.register(*PROPORTIONAL)
def proportional(em, node, grads, needs):
    if node.op_type in ("Mul", "Div") and all(needs):
        em.fail("relevance through a product of two activations is not defined (gating)")
    y = node.output[0]
    s = em.op("Div", [grads[0], stabilise(em, y, SPLIT_EPSILON)])
    shares = GRADIENT.rules[node.op_type](em, node, [s], needs)
    return [
        None if share is None or not need else em.op("Mul", [x, share])
        for x, share, need in zip(node.input, shares, needs, strict=False)
    ]
