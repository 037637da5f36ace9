"""Multiply-accumulates of the convolutions and matrix products an ONNX graph runs to compute
some of its outputs, from ONNX shape inference at fixed input sizes: the work a pass must do
however well ONNX Runtime runs it, for comparing passes of different graphs.

A Conv counts N * C_out * out_positions * (C_in / groups) * kernel; a ConvTranspose counts the
convolution it is the adjoint of (N * C_in * in_positions * (C_out / groups) * kernel), not the
zeros it inserts; Gemm and MatMul count rows * inner * columns. Elementwise ops count nothing.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import shape_inference


def with_sizes(model: onnx.ModelProto, sizes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy of model with the named inputs fixed to sizes, shapes inferred."""
    fixed = onnx.ModelProto.FromString(model.SerializeToString())
    for value in fixed.graph.input:
        if value.name in sizes:
            for dim, size in zip(value.type.tensor_type.shape.dim, sizes[value.name], strict=True):
                dim.Clear()
                dim.dim_value = size
    return shape_inference.infer_shapes(fixed)


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def node_macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    """One node's MACs from its tensors' shapes (0 for ops without products); a shape that
    inference left unknown is an error, not a count of 0."""
    if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
        return 0
    for name in (*node.input[:2], node.output[0]):
        if not shapes.get(name) or min(shapes[name]) <= 0:
            raise ValueError(f"{node.op_type} {node.name!r}: no static shape for {name!r}")
    if node.op_type in ("Conv", "ConvTranspose"):
        weight = shapes[node.input[1]]
        positions = shapes[node.output[0] if node.op_type == "Conv" else node.input[0]]
        return int(np.prod(positions)) * int(np.prod(weight[1:]))
    a, b = shapes[node.input[0]], shapes[node.input[1]]  # Gemm or MatMul
    transposed = node.op_type == "Gemm" and _attribute(node, "transB", 0)
    return int(np.prod(a)) * (b[0] if transposed else b[-1])


def macs(
    model: onnx.ModelProto,
    sizes: dict[str, tuple[int, ...]],
    outputs: list[str],
    skip: frozenset[str] = frozenset(),
) -> int:
    """The MACs of the nodes that `outputs` depend on, with the inputs fixed to sizes; nodes
    that write a tensor named in `skip` (another graph's, such as a backward graph's forward
    part) count nothing."""
    inferred = with_sizes(model, sizes).graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*inferred.value_info, *inferred.input, *inferred.output)
    }
    shapes.update({t.name: list(t.dims) for t in inferred.initializer})
    producers = {name: node for node in inferred.node for name in node.output}
    wanted, seen, total = list(outputs), set(), 0
    while wanted:
        node = producers.get(wanted.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        wanted.extend(name for name in node.input if name)
        if not skip.intersection(node.output):
            total += node_macs(node, shapes)
    return total
