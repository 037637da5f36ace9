"""Random small ONNX models for the fuzzer: convolutional classifiers of images or series,
most of them valid, some broken the ways real files are (NaN or huge weights, a head that
fixes the input size, a dense or scalar output, an integer input, absurd padding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ACTIVATIONS = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "Clip")
HEADS = ("gap", "flatten", "reduce", "softmax", "dense", "scalar", "wrong_width")
WEIGHTS = ("normal", "normal", "normal", "normal", "nan", "huge", "zero")


@dataclass
class Drawn:
    """A drawn model and what an input for it looks like (for the input generator)."""

    model: onnx.ModelProto
    rank: int  # 3 (N, C, T) or 4 (N, C, H, W)
    channels: int
    size: tuple[int, ...]  # the spatial size the model was built for
    free: bool  # the spatial axes are symbolic in the graph
    dtype: type


class Builder:
    def __init__(self, rng: np.random.Generator, dtype: type, weights: str) -> None:
        self.rng, self.dtype, self.weights = rng, dtype, weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}{self.count}"

    def tensor(self, shape, scale: float = 0.5) -> str:
        values = self.rng.standard_normal(shape) * scale
        if self.weights == "nan" and self.rng.random() < 0.3:
            values.flat[0] = np.nan
        elif self.weights == "huge":
            values = values * 1e30
        elif self.weights == "zero":
            values = values * 0
        name = self.name("w")
        with np.errstate(over="ignore"):  # huge weights overflow float16 to Inf: so be it
            cast = values.astype(self.dtype)
        self.inits.append(numpy_helper.from_array(cast, name))
        return name

    def ints(self, values) -> str:
        name = self.name("i")
        self.inits.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def conv_block(b: Builder, x: str, cin: int, size: list[int], absurd: bool) -> tuple[str, int]:
    rng = b.rng
    n = len(size)
    kernel = int(rng.choice([1, 3]))
    groups = cin if cin > 1 and rng.random() < 0.2 else 1
    cout = int(rng.integers(2, 7)) * groups if groups > 1 else int(rng.integers(2, 9))
    stride = 2 if rng.random() < 0.3 and min(size) >= 4 else 1
    pad = 10**6 if absurd else kernel // 2
    attrs = {"kernel_shape": [kernel] * n, "pads": [pad] * (2 * n), "strides": [stride] * n}
    if groups > 1:
        attrs["group"] = groups
    y = b.op(
        "Conv", [x, b.tensor((cout, cin // groups, *[kernel] * n)), b.tensor((cout,))], **attrs
    )
    size[:] = [(s + 2 * pad - kernel) // stride + 1 for s in size]
    if rng.random() < 0.3:
        y = b.op(
            "BatchNormalization",
            [y, b.tensor((cout,)), b.tensor((cout,)), b.tensor((cout,)), _positive(b, cout)],
        )
    activation = str(rng.choice(ACTIVATIONS))
    if activation == "Clip":
        y = b.op("Clip", [y, _scalar(b, 0.0), _scalar(b, 6.0)])
    elif activation == "LeakyRelu":
        y = b.op("LeakyRelu", [y], alpha=0.1)
    else:
        y = b.op(activation, [y])
    if rng.random() < 0.3 and min(size) >= 4:
        pool = str(rng.choice(["MaxPool", "AveragePool"]))
        y = b.op(pool, [y], kernel_shape=[2] * n, strides=[2] * n)
        size[:] = [s // 2 for s in size]
    return y, cout


def _positive(b: Builder, n: int) -> str:
    name = b.name("v")
    b.inits.append(numpy_helper.from_array((b.rng.random(n) + 0.5).astype(b.dtype), name))
    return name


def _scalar(b: Builder, value: float) -> str:
    name = b.name("s")
    b.inits.append(numpy_helper.from_array(np.asarray(value, b.dtype), name))
    return name


def random_model(rng: np.random.Generator) -> Drawn:
    """One model drawn from `rng`: mostly valid classifiers, some broken."""
    rank = 4 if rng.random() < 0.8 else 3
    channels = int(rng.integers(1, 4))
    size = [int(rng.integers(4, 13)) for _ in range(rank - 2)]
    dtype = np.float16 if rng.random() < 0.1 else np.float32
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    if rng.random() < 0.03:
        elem = TensorProto.INT64
    b = Builder(rng, dtype, str(rng.choice(WEIGHTS)))
    free = rng.random() < 0.3
    built = list(size)
    x, cin = "x", channels
    absurd = rng.random() < 0.02
    for i in range(int(rng.integers(1, 4))):
        x, cin = conv_block(b, x, cin, built, absurd and i == 0)
    classes = int(rng.integers(2, 6))
    head = str(rng.choice(HEADS, p=[0.35, 0.15, 0.1, 0.2, 0.07, 0.06, 0.07]))
    if absurd:
        head = "gap"  # a flatten head of an absurd layer would not fit in memory to draw
    spatial_axes = list(range(2, rank))
    if head == "dense":
        logits = b.op("Conv", [x, b.tensor((classes, cin, *[1] * (rank - 2)))])
    else:
        if head in ("gap", "softmax", "scalar"):
            pooled = b.op("GlobalAveragePool", [x])
            flat = b.op("Flatten", [pooled])
            width = cin
        elif head == "reduce":
            flat = b.op("ReduceMean", [x], axes=spatial_axes, keepdims=0)
            width = cin
        else:
            flat = b.op("Flatten", [x])
            width = cin * int(np.prod(built)) + (1 if head == "wrong_width" else 0)
        logits = b.op("Gemm", [flat, b.tensor((classes, width))], transB=1)
        if head == "softmax":
            logits = b.op("Softmax", [logits], axis=1)
        if head == "scalar":
            logits = b.op("ReduceSum", [logits, b.ints([1])], keepdims=0)
    output_rank = {"dense": rank, "scalar": 1}.get(head, 2)
    dims = ["N", channels, *(["H", "W"][: rank - 2] if free else size)]
    if free and rank == 3:
        dims = ["N", channels, "T"]
    if rng.random() < 0.05:
        dims[0] = int(rng.choice([1, 2]))
    graph = helper.make_graph(
        b.nodes,
        "fuzz",
        [helper.make_tensor_value_info("x", elem, dims)],
        [helper.make_tensor_value_info(logits, elem, [None] * output_rank)],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return Drawn(model, rank, channels, tuple(size), free, dtype)


def mutate_structure(model: onnx.ModelProto, rng: np.random.Generator) -> onnx.ModelProto:
    """A copy with one structural change: an op renamed, a node dropped, an input that names
    nothing, an attribute out of range, an opset that does not exist, or no outputs."""
    mutated = onnx.ModelProto()
    mutated.CopyFrom(model)
    g = mutated.graph
    choice = int(rng.integers(0, 7))
    node = g.node[int(rng.integers(0, len(g.node)))] if len(g.node) else None
    if choice == 0 and node is not None:
        node.op_type = str(rng.choice(["Conv", "Gemm", "Relu", "Transpose", "Sin", "Bogus"]))
    elif choice == 1 and node is not None:
        g.node.remove(node)
    elif choice == 2 and node is not None and node.input:
        node.input[0] = "nothing_here"
    elif choice == 3 and node is not None and node.attribute:
        attribute = node.attribute[int(rng.integers(0, len(node.attribute)))]
        if attribute.ints:
            attribute.ints[0] = int(rng.choice([-5, 0, 10**9]))
        else:
            attribute.f = float(rng.choice([np.nan, -1e30, 1e30]))
    elif choice == 4:
        mutated.opset_import[0].version = int(rng.choice([1, 5, 99]))
    elif choice == 5:
        del g.output[:]
    elif g.initializer:
        tensor = g.initializer[int(rng.integers(0, len(g.initializer)))]
        if tensor.dims:
            tensor.dims[0] = tensor.dims[0] + int(rng.integers(1, 5))
        else:
            tensor.dims.append(int(rng.integers(2, 5)))
    return mutated


def mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    """The serialized model truncated, with flipped bytes, or with garbage inserted."""
    raw = bytearray(data)
    how = int(rng.integers(0, 3))
    if how == 0:
        return bytes(raw[: int(rng.integers(0, max(1, len(raw))))])
    if how == 1:
        for _ in range(int(rng.integers(1, 20))):
            raw[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))
        return bytes(raw)
    at = int(rng.integers(0, len(raw)))
    return bytes(
        raw[:at]
        + rng.integers(0, 256, int(rng.integers(1, 64))).astype(np.uint8).tobytes()
        + raw[at:]
    )
