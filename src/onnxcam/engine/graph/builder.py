"""Appending ONNX nodes under fresh names: the one node builder of backward graphs and of the
served explainer graphs.

It writes the forms that change with the opset (the axes of reductions and Unsqueeze as an
input from opset 13/18, an attribute before), so callers state the maths only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: Opset from which each op takes its axes as an input instead of an attribute.
AXES_AS_INPUT = {"ReduceSum": 13, "Unsqueeze": 13, "Squeeze": 13}
AXES_AS_INPUT_DEFAULT = 18


class NodeBuilder:
    """Nodes and constants for one graph (or Loop body) at one opset; names start with `prefix`.

    `initializers` may be shared with an outer graph: a Loop body then reads its constants
    from the outer scope.
    """

    def __init__(
        self, opset: int, prefix: str, initializers: list[onnx.TensorProto] | None = None
    ) -> None:
        self.opset, self.prefix = opset, prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers = [] if initializers is None else initializers
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A tensor name no other call returns."""
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def op(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any) -> Any:
        """Append one node; its output name (or the list of names when outputs > 1)."""
        names = [self.fresh(op_type) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=names[0], **attrs))
        return names[0] if outputs == 1 else names

    def _initializer(self, value: Any, dtype: Any, hint: str) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def const(self, value: Any, dtype: Any) -> str:
        """An initializer holding `value` as `dtype`."""
        return self._initializer(value, dtype, "const")

    def ints(self, values: Any) -> str:
        """An int64 initializer (axes, shapes, indices)."""
        return self._initializer(values, np.int64, "ints")

    def _axes_op(self, op_type: str, x: str, axes: Sequence[int], **attrs: Any) -> str:
        if self.opset >= AXES_AS_INPUT.get(op_type, AXES_AS_INPUT_DEFAULT):
            return self.op(op_type, [x, self.ints(list(axes))], **attrs)
        return self.op(op_type, [x], axes=list(axes), **attrs)

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        """ReduceSum/Max/Min/Mean of x over `axes`; x itself when there are none."""
        if not axes:
            return x
        return self._axes_op(op_type, x, axes, keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self._axes_op("Unsqueeze", x, axes) if axes else x

    def dims(self, x: str, start: int, end: int) -> str:
        """Shape(x)[start:end] as a 1-D int64 tensor."""
        return self.op("Slice", [self.op("Shape", [x]), self.ints([start]), self.ints([end])])

    def reshape(self, x: str, parts: Sequence[str | Sequence[int]]) -> str:
        """Reshape x to the concatenation of shape pieces (tensor names or literal lists)."""
        pieces = [p if isinstance(p, str) else self.ints(list(p)) for p in parts]
        shape = pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)
        return self.op("Reshape", [x, shape])
