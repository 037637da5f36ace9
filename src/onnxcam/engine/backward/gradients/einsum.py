"""Einsum of one or two operands with an explicit output and distinct labels per operand: the
gradient of an operand is the einsum of the output gradient with the other operand."""

from __future__ import annotations

from onnxcam.engine.backward.rulesets import GRADIENT


def _terms(em, node) -> tuple[list[str], str]:
    equation = em.attr(node, "equation")
    equation = (equation.decode() if isinstance(equation, bytes) else equation).replace(" ", "")
    if "->" not in equation or "." in equation:
        em.fail(f"equation {equation!r} is not supported (give the output, no ellipsis)")
    inputs, output = equation.split("->")
    terms = inputs.split(",")
    if any(len(set(t)) != len(t) for t in [*terms, output]):
        em.fail(f"equation {equation!r} repeats a label within an operand (a diagonal)")
    return terms, output


@GRADIENT.register("Einsum")
def einsum(em, node, grads, needs):
    terms, output = _terms(em, node)
    results = []
    for i, (term, need) in enumerate(zip(terms, needs, strict=True)):
        if not need:
            results.append(None)
            continue
        others = [t for j, t in enumerate(terms) if j != i]
        if set(term) - set(output) - set("".join(others)):
            em.fail(f"operand {i}'s summed-out labels are not supported")
        operands = [grads[0], *(node.input[j] for j in range(len(terms)) if j != i)]
        equation = ",".join([output, *others]) + "->" + term
        results.append(em.op("Einsum", operands, equation=equation))
    return results
