"""The node builder of backward graphs, with what rules need to know of the forward graph.

Rules see the forward graph through an Emitter: static shapes and element types from shape
inference, constant values of initializers and Constant nodes (axes, pads, perms), and helpers
that emit the few patterns most rules share (sum a broadcast gradient back, reshape like, zeros).
Backward graphs are built at opset >= 16 (axes and split sizes as inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxcam.engine import graph
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.ort import onnxruntime as ort
from onnxcam.errors import ModelError

Dims = tuple[int | str | None, ...]


class BackwardError(ModelError):
    """The backward graph cannot be built (an op without a rule, an unsupported attribute)."""


class Emitter(NodeBuilder):
    """Appends backward nodes and constants; reads the forward graph's shapes and constants."""

    def __init__(self, model: onnx.ModelProto, prefix: str = "onnxcam_bw/") -> None:
        super().__init__(graph.opset_version(model), prefix)
        info = graph.ModelInfo(model)
        self.specs = dict(info.specs)
        self._values = dict(info.constant_tensors)
        for name, tensor in self._values.items():
            self.specs.setdefault(
                name, graph.TensorSpec(name, tensor.data_type, tuple(tensor.dims))
            )
        self.model = model
        self._producers = info.producers
        #: The model's float type: the type of tensors the rules emit (a float16 model's
        #: gradients are float16), which shape inference does not know for emitted names.
        self.float_type = graph.elem_type(self.specs.get(model.graph.input[0].name))
        self._static = graph.static_nodes(model)
        self._probed = False
        self.node: onnx.NodeProto | None = None  # the forward node whose rule is running
        #: Per-sample (N,) quantities the rules add to as they run (`tally`), by name.
        self.tallies: dict[str, list[str]] = {}

    def const(self, value: Any, dtype: Any = None, like: str | None = None) -> str:
        """An initializer holding value as `dtype`, or in the element type of tensor `like`
        (the model's float type when neither is given)."""
        if dtype is None:
            dtype = self.dtype(like) if like is not None else self.dtype("")
        return self._initializer(value, dtype, "const")

    # what the forward graph knows ------------------------------------------------------------

    def dtype(self, name: str) -> np.dtype:
        """The element type of a forward tensor, or the model's float type for emitted ones."""
        spec = self.specs.get(name)
        elem = spec.elem_type if spec is not None and spec.elem_type else self.float_type
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem))

    def shape(self, name: str) -> Dims | None:
        spec = self.specs.get(name)
        return None if spec is None else spec.shape

    def rank(self, name: str) -> int:
        shape = self.shape(name)
        if shape is None:
            self.fail(f"the rank of {name!r} is unknown (shape inference could not infer it)")
        return len(shape)

    def static_dims(self, name: str, axes: Sequence[int]) -> list[int]:
        """Sizes of `axes` of tensor `name`, which must be known numbers (axis 0 is the batch)."""
        shape = self.shape(name)
        dims = [None if shape is None else shape[a] for a in axes]
        if any(not isinstance(d, int) for d in dims) and not self._probed:
            self._probe_shapes()
            shape = self.shape(name)
            dims = [None if shape is None else shape[a] for a in axes]
        if any(not isinstance(d, int) for d in dims):
            self.fail(f"needs the static size of axes {list(axes)} of {name!r}, got {shape}")
        return dims

    def _probe_shapes(self) -> None:
        """Fill what shape inference left open by running the model on zero inputs of batch 1
        and 2: sizes computed in-graph, and constants computed in-graph (as old exporters
        compute pads, slice starts and split points from weights or from Shape)."""
        self._probed = True
        source = graph.model_input(self.model)
        if source.shape is None or any(not isinstance(d, int) for d in source.shape[1:]):
            return
        names = [out for node in self.model.graph.node for out in node.output if out]
        session = ort.InferenceSession(
            graph.expose(self.model, names).SerializeToString(),
            providers=["CPUExecutionProvider"],
        )
        dtype = helper.tensor_dtype_to_np_dtype(source.elem_type)
        batches = (1,) if isinstance(source.shape[0], int) else (1, 2)
        runs = [
            session.run(names, {source.name: np.zeros((n, *source.shape[1:]), dtype)})
            for n in batches
        ]
        nodes = self.model.graph.node
        static = {o for i in self._static for o in nodes[i].output}
        for name, *values in zip(names, *runs, strict=True):
            value = values[0]
            same = all(v.shape == value.shape and np.array_equal(v, value) for v in values)
            if name not in self._values and (name in static or (value.dtype.kind in "iu" and same)):
                self._values[name] = numpy_helper.from_array(value, name)
            known = self.shape(name)
            if known is not None and all(isinstance(d, int) for d in known):
                continue
            # axis 0 is the batch unless both runs gave it one size (a detector's anchors)
            fixed = (
                len(values) > 1
                and value.ndim
                and all(v.shape[:1] == value.shape[:1] for v in values)
            )
            first = value.shape[0] if fixed else (known[0] if known else None)
            dims = (first, *value.shape[1:]) if value.ndim else ()
            spec = self.specs.get(name)
            self.specs[name] = graph.TensorSpec(name, spec.elem_type if spec else 0, dims)

    def value(self, name: str) -> np.ndarray | None:
        """The value of a constant input (initializer, Constant node, or computed from those
        alone, as old exporters compute pads and axes), else None."""
        if name and name not in self._values and not self._probed:
            self._probe_shapes()
        tensor = self._values.get(name) if name else None
        return None if tensor is None else numpy_helper.to_array(tensor)

    def is_constant(self, name: str) -> bool:
        """Whether `name` is an initializer or a Constant node's output, or a value `value` has
        computed from those (nothing is run here)."""
        return name in self._values

    def producer(self, name: str) -> onnx.NodeProto | None:
        """The forward node that writes `name` (None for graph inputs and initializers)."""
        return self._producers.get(name)

    def constant_input(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray | None:
        """A node input that must be a constant (axes, pads, sizes); None when absent."""
        if index >= len(node.input) or not node.input[index]:
            return None
        value = self.value(node.input[index])
        if value is None:
            self.fail(f"its {what} input {node.input[index]!r} must be a constant")
        return value

    def fail(self, message: str) -> None:
        node = self.node
        where = f"{node.op_type} node {node.name or node.output[0]!r}: " if node else ""
        raise BackwardError(where + message)

    # patterns shared by rules ----------------------------------------------------------------

    def tally(self, name: str, value: str) -> None:
        """Add the per-sample sum of `value` (batch on axis 0) to the tally `name`, which the
        backward graph returns when asked (`build(..., tallies=[name])`)."""
        self.tallies.setdefault(name, []).append(self.per_sample_sum(value))

    def per_sample_sum(self, value: str) -> str:
        """(N,) sums of `value` per input of the batch: N is the data input's batch, which a
        tensor may carry folded into its first axis (Swin's windows: 4N rows, input-major)."""
        source = graph.model_input(self.model).name
        rows = self.op("Slice", [self.op("Shape", [source]), self.ints([0]), self.ints([1])])
        flat = self.op("Reshape", [value, self.op("Concat", [rows, self.ints([-1])], axis=0)])
        return self.reduce_sum(flat, [1], keepdims=False)

    def reduce_sum(self, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        return self.reduce("ReduceSum", x, axes, keepdims)

    def reshape_like(self, x: str, like: str) -> str:
        return self.op("Reshape", [x, self.op("Shape", [like])])

    def zeros_like(self, like: str) -> str:
        zero = numpy_helper.from_array(np.zeros(1, self.dtype(like)))
        return self.op("ConstantOfShape", [self.op("Shape", [like])], value=zero)

    def unbroadcast(self, grad: str, operand: str, result: str) -> str:
        """Sum a gradient of the broadcast result back to the shape of one operand."""
        shape = self.shape(operand)
        if shape is None:
            self.fail(f"the shape of operand {operand!r} is unknown")
        lead = self.rank(result) - len(shape)
        axes = list(range(lead))
        axes += [lead + i for i, d in enumerate(shape) if d == 1]
        if not axes:
            return grad
        summed = self.reduce_sum(grad, axes, keepdims=True)
        return self.reshape_like(summed, operand) if lead else summed

    def attr(self, node: onnx.NodeProto, name: str, default: Any = None) -> Any:
        return graph.attributes(node).get(name, default)
