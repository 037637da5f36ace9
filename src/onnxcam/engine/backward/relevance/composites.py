"""LRP composites: which rule each Conv/Gemm/MatMul and each sum gets, selectable by name.

| name | first linear layer | other Conv | Gemm/MatMul | sums and pools |
|---|---|---|---|---|
| `lrp-0` | LRP-0 | LRP-0 | LRP-0 | Norm |
| `epsilon` | epsilon | epsilon | epsilon | Norm |
| `epsilon-plus` | z+ | z+ | epsilon | z+ |
| `epsilon-plus-flat` | flat | z+ | epsilon | z+ |
| `epsilon-alpha2-beta1` | alpha2-beta1 | alpha2-beta1 | epsilon | alpha2-beta1 |
| `epsilon-gamma-box` | z^B (low, high) | gamma | epsilon | gamma |
| `sr-official` | LRP-0 with bias, Z + 1e-9 | same | x W+ without bias, Z + 1e-9 | Norm |
| `attn-lrp` | epsilon | epsilon | epsilon | Norm |

Every composite but `attn-lrp` holds a transformer's attention probabilities (relevance goes to
the values an attention map weighs, as conservative propagation does); `attn-lrp` is AttnLRP's
(relevance/attention.py): through the softmax by its Taylor expansion, and half to each operand
of a product of two activations (queries and keys, attention and values).

`sr-official` is the rule set of the SR-map authors' code (algorithms §2.18: x W+ without the sign
split, stabilisers of 1e-9 that are not sign-aware). The others are zennit 1.0's composites
with its rules and stabilisers (`epsilon` for the epsilon rule, `stabiliser` for every other
rule and for the splits), and two departures that `profile="zennit"` undoes:

- a sum of tensors (a residual Add, a pool) is a linear layer with unit weights, so it gets the
  composite's own convolution rule; zennit splits every sum by `Norm` (LRP-epsilon), whose
  shares grow without bound where the addends nearly cancel;
- z^B goes to the first linear layer of any kind (its bounds are the input's), and its bounds
  are widened per element to contain the input, which the rule assumes; zennit gives it to the
  first convolution only and takes the bounds as they come.

"First" is the first Conv/Gemm/MatMul in graph order (the one nearest the input); a first layer
that is not a Conv keeps the dense rule, except in `epsilon-plus-flat` (and, but for the zennit
profile, `epsilon-gamma-box`), whose first-layer rule applies to any layer kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from onnxcam.engine.backward.relevance import attention, linear, normalization, passing
from onnxcam.engine.backward.rulesets import RELEVANCE
from onnxcam.engine.backward.sweep import RuleSet
from onnxcam.engine.options import Options, choice, number, numbers

LINEAR_OPS = ("Conv", "Gemm", "MatMul")
LRP0_EPSILON = 1e-9  # LRP-0 is LRP-epsilon with a stabiliser that only prevents 0 / 0

PROFILES = ("onnxcam", "zennit")
COMPOSITES = (
    "lrp-0",
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-alpha2-beta1",
    "epsilon-gamma-box",
    "sr-official",
    "attn-lrp",
)


@dataclass(frozen=True)
class Composite(Options):
    """A named composite with its parameters (hashable: backward graphs are cached by it)."""

    name: str = choice(
        "epsilon-plus", COMPOSITES, "which rule each layer gets", what="LRP composite"
    )
    epsilon: float = number(1e-6, "stabiliser of the epsilon rule", low=0)
    gamma: float = number(0.25, "weight of the positive part in the gamma rule", low=0)
    low: float | tuple[float, ...] | None = numbers(
        None, "z^B: lowest model input value, per channel (default: pixel 0 preprocessed)"
    )
    high: float | tuple[float, ...] | None = numbers(
        None, "z^B: highest model input value, per channel (default: pixel 1 preprocessed)"
    )
    stabiliser: float = number(
        linear.STABILISER, "stabiliser of the other rules and of the splits at sums", low=0
    )
    profile: str = choice(
        "onnxcam", PROFILES, "onnxcam, or zennit: its Norm at sums, its z^B", what="LRP profile"
    )

    def layer_rules(self) -> tuple[linear.LinearRule, linear.LinearRule, linear.LinearRule]:
        """(first layer, other Conv, dense) rules."""
        eps = linear.epsilon_rule(self.epsilon)
        lrp0 = linear.epsilon_rule(LRP0_EPSILON)
        stab = self.stabiliser
        if self.name == "lrp-0":
            return lrp0, lrp0, lrp0
        if self.name in ("epsilon", "attn-lrp"):
            return eps, eps, eps
        if self.name == "epsilon-plus":
            return linear.zplus_rule(stab), linear.zplus_rule(stab), eps
        if self.name == "epsilon-plus-flat":
            return linear.flat_rule(stab), linear.zplus_rule(stab), eps
        if self.name == "epsilon-alpha2-beta1":
            ab = linear.alpha_beta_rule(2.0, 1.0, stab)
            return ab, ab, eps
        if self.name == "epsilon-gamma-box":
            low = 0.0 if self.low is None else self.low
            high = 1.0 if self.high is None else self.high
            box = linear.zbox_rule(low, high, stab, widen=self.profile == "onnxcam")
            return box, linear.gamma_rule(self.gamma, stab), eps
        conv = linear.epsilon_rule(LRP0_EPSILON, signed=False)  # sr-official
        return conv, conv, linear.positive_weights_rule(LRP0_EPSILON)

    def sum_shares(self) -> tuple[passing.Share, ...]:
        """How relevance splits at sums and pools: among the addends that agree in sign with
        the sum, but by Norm (gradient times input) in the epsilon family and the zennit
        profile."""
        if self.profile == "zennit" or self.name in ("lrp-0", "epsilon", "sr-official", "attn-lrp"):
            return passing.NORM
        return passing.SIGN_MATCHED

    @property
    def split_stabiliser(self) -> float:
        """The stabiliser of the proportional splits (sums, pools)."""
        return LRP0_EPSILON if self.name == "sr-official" else self.stabiliser

    @property
    def first_any_kind(self) -> bool:
        box_anywhere = self.name == "epsilon-gamma-box" and self.profile == "onnxcam"
        return self.name == "epsilon-plus-flat" or box_anywhere

    def rules(self, model: onnx.ModelProto) -> RuleSet:
        """The relevance rule set of this composite for one (BatchNorm-folded) model."""
        first, conv, dense = self.layer_rules()
        return rule_set(
            f"relevance ({self.name})",
            model,
            first,
            conv,
            dense,
            self.first_any_kind,
            self.split_stabiliser,
            self.sum_shares(),
            self.name == "attn-lrp",
        )


def rule_set(
    name: str,
    model: onnx.ModelProto,
    first_rule: linear.LinearRule,
    conv_rule: linear.LinearRule,
    dense_rule: linear.LinearRule,
    first_any_kind: bool = False,
    split_stabiliser: float = linear.STABILISER,
    sum_shares: tuple[passing.Share, ...] = passing.NORM,
    attention_rules: bool = False,
) -> RuleSet:
    """RELEVANCE plus linear-layer rules: `first_rule` for the first linear layer of `model`
    (if it is a Conv, or of any kind when first_any_kind), `conv_rule` for other Conv layers,
    `dense_rule` for Gemm/MatMul; sums and pools split by `sum_shares`, stabilised by
    `split_stabiliser`; `attention_rules`: AttnLRP's softmax and uniform rules (else attention
    probabilities are held)."""
    first = next((n for n in model.graph.node if n.op_type in LINEAR_OPS), None)

    def rule_for(node: onnx.NodeProto) -> linear.LinearRule:
        is_first = first is not None and node.output[0] == first.output[0]
        if is_first and (node.op_type == "Conv" or first_any_kind):
            return first_rule
        return conv_rule if node.op_type == "Conv" else dense_rule

    proportional = passing.proportional_rule(split_stabiliser, sum_shares)
    bilinear = attention.uniform_rule(split_stabiliser) if attention_rules else proportional

    def linear_layer(em, node, grads, needs):
        if node.op_type == "MatMul" and all(needs[:2]):  # queries and keys, attention and values
            return bilinear(em, node, grads, needs)
        if len(needs) > 1 and any(needs[1:]):
            em.fail("relevance rules need constant weights, not computed ones")
        relevance = rule_for(node)(linear.Layer.of(em, node), grads[0])
        return [relevance] + [None] * (len(node.input) - 1)

    rules = RuleSet(name, dict(RELEVANCE.rules), held=passing.absorb_held)
    rules.register(*LINEAR_OPS)(linear_layer)
    rules.register(*passing.PROPORTIONAL)(proportional)
    rules.register("LayerNormalization")(normalization.layer_norm_rule(split_stabiliser))
    if attention_rules:
        rules.register("Softmax")(attention.softmax)
    return rules
