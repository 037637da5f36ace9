"""Products of two activations: which operand carries the relevance, and which is held.

Conservative propagation for transformers (Ali et al., ICML 2022) and AttnLRP (Achtibat et al.,
ICML 2024) treat the factors that only weigh or scale a signal as constants: attention
probabilities (relevance goes to the values, not through the softmax), a sigmoid or softmax
gate, the divisor of a normalisation (LayerNorm written out as arithmetic: the standard
deviation is held). An activation written as a product of its input with a function of it
(SiLU as x * sigmoid(x), GELU as x * (1 + erf(x / sqrt 2)) / 2) passes relevance to x, as
zennit's `Pass` does for activation modules. Any other product of two activations is refused.
"""

from __future__ import annotations

import onnx

#: Ops a gate may go through between its softmax or sigmoid and the product that reads it.
CARRIERS = frozenset(
    ("Identity", "Dropout", "Cast", "CastLike", "Reshape", "Transpose", "Squeeze", "Unsqueeze")
).union(("Expand", "Slice", "Gather", "Where", "Mul", "Div"))
GATES = frozenset(("Softmax", "Sigmoid", "HardSigmoid"))
#: Elementwise ops through which an activation's product form is traced back to its input.
UNARY = frozenset(
    ("Identity", "Cast", "Neg", "Abs", "Erf", "Tanh", "Sigmoid", "HardSigmoid", "Exp", "Log")
).union(("Sqrt", "Reciprocal", "Softplus", "Relu", "Pow", "Clip"))
BINARY = frozenset(("Add", "Sub", "Mul", "Div"))
SCALING = frozenset(("Identity", "Cast", "Mul", "Div"))
MAX_STEPS = 32


def value_operand(em, node: onnx.NodeProto, needs: list[bool]) -> int:
    """The index of the operand that carries the relevance of a Mul, Div or MatMul."""
    variable = [i for i, need in enumerate(needs[:2]) if need]
    if len(variable) == 1:
        return variable[0]
    if node.op_type == "Div":
        return 0  # the divisor only scales: held, as the standard deviation of a norm
    a, b = node.input[:2]
    gates = [is_gate(em, a), is_gate(em, b)]
    if gates.count(True) == 1:
        return gates.index(False)
    if node.op_type == "Mul":
        (root_a, scales_a), (root_b, scales_b) = root(em, a), root(em, b)
        if root_a is not None and root_a == root_b:
            return 0 if scales_a or not scales_b else 1
    em.fail(
        "relevance through a product of two activations that is neither an attention map "
        "times values, a gate, nor an activation of one input is not defined"
    )
    return 0


def is_gate(em, tensor: str) -> bool:
    """Whether `tensor` is a softmax or sigmoid output, moved or masked on the way."""
    for _ in range(MAX_STEPS):
        node = em.producer(tensor)
        if node is None:
            return False
        if node.op_type in GATES:
            return True
        if node.op_type not in CARRIERS:
            return False
        if node.op_type == "Where":  # masking: a gate if either branch is one
            return any(is_gate(em, branch) for branch in node.input[1:] if branch)
        live = [i for i in node.input if i and not em.is_constant(i)]
        if len(live) != 1:
            return False
        tensor = live[0]
    return False


def root(em, tensor: str) -> tuple[str | None, bool]:
    """The tensor that `tensor` is an elementwise function of, and whether the function is a
    mere scaling (Identity, Cast, Mul or Div by constants); (None, False) past MAX_STEPS."""
    scaling = True
    for _ in range(MAX_STEPS):
        node = em.producer(tensor)
        if node is None or node.op_type not in UNARY | BINARY:
            return tensor, scaling
        live = [i for i in node.input if i and not em.is_constant(i)]
        if node.op_type in BINARY and len(live) == 2:
            (left, _), (right, _) = root(em, live[0]), root(em, live[1])
            return (left, False) if left is not None and left == right else (tensor, scaling)
        if len(live) != 1:
            return tensor, scaling
        scaling = scaling and node.op_type in SCALING
        tensor = live[0]
    return None, False
