"""LRP composites: which linear rule each Conv/Gemm/MatMul gets, selectable by name.

| name | first linear layer | other Conv | Gemm/MatMul |
|---|---|---|---|
| `lrp-0` | LRP-0 | LRP-0 | LRP-0 |
| `epsilon` | epsilon | epsilon | epsilon |
| `epsilon-plus` | z+ | z+ | epsilon |
| `epsilon-plus-flat` | flat | z+ | epsilon |
| `epsilon-alpha2-beta1` | alpha2-beta1 | alpha2-beta1 | epsilon |
| `epsilon-gamma-box` | z^B (low, high) | gamma | epsilon |
| `sr-official` | LRP-0 with bias, Z + 1e-9 | same | z+ without bias, Z + 1e-9 |

`sr-official` is the rule set of the SR-map authors' code (spec §2.18); the others follow
zennit's composites. "First" is the first Conv/Gemm/MatMul in graph order (the one nearest the
input); a first layer that is not a Conv keeps the dense rule, except in `epsilon-gamma-box`
and `epsilon-plus-flat`, whose first-layer rules apply to any layer kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from onnxcam.engine.backward.relevance import linear
from onnxcam.engine.backward.rulesets import RELEVANCE
from onnxcam.engine.backward.sweep import RuleSet
from onnxcam.engine.options import Options, choice, number, numbers

LINEAR_OPS = ("Conv", "Gemm", "MatMul")
LRP0_EPSILON = 1e-9  # LRP-0 is LRP-epsilon with a stabiliser that only prevents 0 / 0

COMPOSITES = (
    "lrp-0",
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-alpha2-beta1",
    "epsilon-gamma-box",
    "sr-official",
)


@dataclass(frozen=True)
class Composite(Options):
    """A named composite with its parameters (hashable: backward graphs are cached by it)."""

    name: str = choice(
        "epsilon-plus", COMPOSITES, "which rule each layer gets", what="LRP composite"
    )
    epsilon: float = number(1e-6, "stabiliser of the epsilon rules", low=0)
    gamma: float = number(0.25, "weight of the positive part in the gamma rule", low=0)
    low: float | tuple[float, ...] = numbers(0.0, "z^B: lowest input value (per channel)")
    high: float | tuple[float, ...] = numbers(1.0, "z^B: highest input value (per channel)")

    def layer_rules(self) -> tuple[linear.LinearRule, linear.LinearRule, linear.LinearRule]:
        """(first layer, other Conv, dense) rules."""
        eps = linear.epsilon_rule(self.epsilon)
        lrp0 = linear.epsilon_rule(LRP0_EPSILON)
        if self.name == "lrp-0":
            return lrp0, lrp0, lrp0
        if self.name == "epsilon":
            return eps, eps, eps
        if self.name == "epsilon-plus":
            return linear.zplus_rule(), linear.zplus_rule(), eps
        if self.name == "epsilon-plus-flat":
            return linear.flat_rule(), linear.zplus_rule(), eps
        if self.name == "epsilon-alpha2-beta1":
            ab = linear.alpha_beta_rule(2.0, 1.0, self.epsilon)
            return ab, ab, eps
        if self.name == "epsilon-gamma-box":
            box = linear.zbox_rule(self.low, self.high, self.epsilon)
            return box, linear.gamma_rule(self.gamma, self.epsilon), eps
        conv = linear.epsilon_rule(LRP0_EPSILON, signed=False)  # sr-official
        return conv, conv, linear.zplus_rule(LRP0_EPSILON, signed=False)

    @property
    def first_any_kind(self) -> bool:
        return self.name in ("epsilon-plus-flat", "epsilon-gamma-box")

    def rules(self, model: onnx.ModelProto) -> RuleSet:
        """The relevance rule set of this composite for one (BatchNorm-folded) model."""
        first, conv, dense = self.layer_rules()
        return rule_set(f"relevance ({self.name})", model, first, conv, dense, self.first_any_kind)


def rule_set(
    name: str,
    model: onnx.ModelProto,
    first_rule: linear.LinearRule,
    conv_rule: linear.LinearRule,
    dense_rule: linear.LinearRule,
    first_any_kind: bool = False,
) -> RuleSet:
    """RELEVANCE plus linear-layer rules: `first_rule` for the first linear layer of `model`
    (if it is a Conv, or of any kind when first_any_kind), `conv_rule` for other Conv layers,
    `dense_rule` for Gemm/MatMul."""
    first = next((n for n in model.graph.node if n.op_type in LINEAR_OPS), None)

    def rule_for(node: onnx.NodeProto) -> linear.LinearRule:
        is_first = first is not None and node.output[0] == first.output[0]
        if is_first and (node.op_type == "Conv" or first_any_kind):
            return first_rule
        return conv_rule if node.op_type == "Conv" else dense_rule

    def linear_layer(em, node, grads, needs):
        if len(needs) > 1 and any(needs[1:]):
            em.fail("relevance rules need constant weights, not computed ones")
        relevance = rule_for(node)(linear.Layer.of(em, node), grads[0])
        return [relevance] + [None] * (len(node.input) - 1)

    rules = RuleSet(name, dict(RELEVANCE.rules))
    rules.register(*LINEAR_OPS)(linear_layer)
    return rules
