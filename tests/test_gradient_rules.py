"""One fixed-answer test per gradient rule: a one-op graph, its backward graph run by ORT, and
torch autograd of the same op on the same numbers (<= 1e-5 of the gradient's size), so a failure
names the rule. Every registered rule must have a case here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from onnxcam.engine.backward import GRADIENT, build, grad_name, seed_name
from onnxcam.engine.runner import open_session

OPSET = 17
RNG = np.random.default_rng(0)


def randn(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def away_from_zero(*shape: int) -> np.ndarray:
    """Values with |v| in [0.5, 1.5]: clear of the kinks and poles at 0."""
    magnitude = RNG.uniform(0.5, 1.5, shape)
    return (magnitude * RNG.choice([-1.0, 1.0], shape)).astype(np.float32)


@dataclass
class Case:
    """op(inputs, constants) -> outputs in ONNX, and the same in torch."""

    op: str
    inputs: dict[str, np.ndarray]  # variable inputs (differentiated), batch axis first
    torch_fn: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]
    attrs: dict = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # node input order (variables and constants); default: inputs
    outputs: int = 1
    label: str = ""
    opset: int = OPSET

    @property
    def id(self) -> str:
        return self.label or self.op


def conv_case(label: str, groups: int, dilation: int) -> Case:
    weight = randn(6, 6 // groups, 3, 3)
    bias = randn(6)
    return Case(
        "Conv",
        {"x": randn(2, 6, 9, 8)},
        lambda x: F.conv2d(
            x, torch.from_numpy(weight), torch.from_numpy(bias), 2, 1, dilation, groups
        ),
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "dilations": [dilation] * 2, "group": groups},
        {"w": weight, "b": bias},
        ("x", "w", "b"),
        label=label,
    )


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


BN = [randn(4) + 2, randn(4), randn(4), np.abs(randn(4)) + 0.5]
GEMM_B, GEMM_C = randn(5, 4), randn(5)
MATMUL_B = randn(4, 5)
CONVT_W = randn(3, 2, 3, 3)
LN_SCALE, LN_BIAS = randn(6) + 1, randn(6)
WHERE = RNG.random((3, 4)) > 0.5
GATHER_ROWS = np.array([[0, 2], [3, 3]], np.int64)
GATHER_ELEMENTS = RNG.integers(0, 5, (2, 3, 4)).astype(np.int64)
TIES_A = randn(2, 3, 4)
TIES_B = np.where(RNG.random((2, 3, 4)) > 0.5, TIES_A, randn(2, 3, 4))  # half the pairs tie

CASES = [
    Case("Abs", {"x": away_from_zero(2, 3, 4)}, torch.abs),
    Case("Add", {"x": randn(2, 3, 4, 5), "z": randn(3, 1, 1)}, lambda x, z: x + z),
    Case("Sub", {"x": randn(2, 3, 4, 5), "z": randn(1, 4, 1)}, lambda x, z: x - z),
    Case("Mul", {"x": randn(2, 3, 4, 5), "z": randn(3, 1, 5)}, lambda x, z: x * z),
    Case("Div", {"x": randn(2, 3, 4), "z": away_from_zero(3, 1)}, lambda x, z: x / z),
    Case("Neg", {"x": randn(2, 3)}, torch.neg),
    Case("Sum", {"x": randn(2, 3), "z": randn(2, 3), "v": randn(2, 3)}, lambda x, z, v: x + z + v),
    Case("Mean", {"x": randn(2, 3), "z": randn(2, 3)}, lambda x, z: (x + z) / 2),
    Case("Identity", {"x": randn(2, 3)}, lambda x: x),
    Case("Dropout", {"x": randn(2, 3)}, lambda x: x),
    Case("Cast", {"x": randn(2, 3)}, lambda x: x, {"to": TensorProto.FLOAT}),
    Case(
        "CastLike",
        {"x": randn(2, 3)},
        lambda x: x,
        constants={"like": np.zeros(1, np.float32)},
        order=("x", "like"),
    ),
    Case("Relu", {"x": away_from_zero(2, 3, 4)}, torch.relu),
    Case(
        "LeakyRelu", {"x": away_from_zero(2, 3, 4)}, lambda x: F.leaky_relu(x, 0.1), {"alpha": 0.1}
    ),
    Case(
        "Clip",
        {"x": randn(2, 3, 4, scale=2)},
        lambda x: torch.clamp(x, -1.0, 1.5),
        constants={"lo": np.float32(-1.0), "hi": np.float32(1.5)},
        order=("x", "lo", "hi"),
    ),
    Case("Sigmoid", {"x": randn(2, 3, 4)}, torch.sigmoid),
    Case("Tanh", {"x": randn(2, 3, 4)}, torch.tanh),
    Case(
        "HardSigmoid",
        {"x": randn(2, 3, 4, scale=3)},
        lambda x: torch.clamp(0.2 * x + 0.5, 0, 1),
        {"alpha": 0.2, "beta": 0.5},
    ),
    Case("HardSwish", {"x": randn(2, 3, 4, scale=4)}, F.hardswish),
    Case("Softmax", {"x": randn(2, 3, 4)}, lambda x: torch.softmax(x, 1), {"axis": 1}),
    Case("LogSoftmax", {"x": randn(2, 5)}, lambda x: torch.log_softmax(x, 1), {"axis": 1}),
    conv_case("Conv", 1, 1),
    conv_case("Conv-depthwise-dilated", 6, 2),
    Case(
        "ConvTranspose",
        {"x": randn(2, 3, 4, 5)},
        lambda x: F.conv_transpose2d(x, _t(CONVT_W), stride=2, padding=1, output_padding=1),
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
        {"w": CONVT_W},
        ("x", "w"),
    ),
    Case(
        "Gemm",
        {"x": randn(2, 4)},
        lambda x: 0.5 * x @ _t(GEMM_B).T + 2.0 * _t(GEMM_C),
        {"alpha": 0.5, "beta": 2.0, "transB": 1},
        {"b": GEMM_B, "c": GEMM_C},
        ("x", "b", "c"),
    ),
    Case(
        "MatMul",
        {"x": randn(2, 3, 4)},
        lambda x: x @ _t(MATMUL_B),
        constants={"b": MATMUL_B},
        order=("x", "b"),
    ),
    Case("MatMul", {"x": randn(2, 3, 4), "z": randn(2, 4, 5)}, torch.matmul, label="MatMul-two"),
    Case(
        "BatchNormalization",
        {"x": randn(2, 4, 3, 3)},
        lambda x: (
            (x - _t(BN[2])[:, None, None])
            / torch.sqrt(_t(BN[3])[:, None, None] + 1e-3)
            * _t(BN[0])[:, None, None]
            + _t(BN[1])[:, None, None]
        ),
        {"epsilon": 1e-3},
        dict(zip(("s", "b", "m", "v"), BN, strict=True)),
        ("x", "s", "b", "m", "v"),
    ),
    Case(
        "MaxPool",
        {"x": randn(2, 3, 7, 6)},
        lambda x: F.max_pool2d(x, 3, 2, 1),
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    Case(
        "AveragePool",
        {"x": randn(2, 3, 7, 6)},
        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    Case("GlobalAveragePool", {"x": randn(2, 3, 4, 5)}, lambda x: x.mean((2, 3), keepdim=True)),
    Case("GlobalMaxPool", {"x": randn(2, 3, 4, 5)}, lambda x: x.amax((2, 3), keepdim=True)),
    Case(
        "ReduceMean",
        {"x": randn(2, 3, 4)},
        lambda x: x.mean(2),
        {"axes": [2], "keepdims": 0},
    ),
    Case(
        "ReduceMax",
        {"x": randn(2, 3, 4)},
        lambda x: x.amax(1, keepdim=True),
        {"axes": [1], "keepdims": 1},
    ),
    Case(
        "ReduceSum",
        {"x": randn(2, 3, 4)},
        lambda x: x.sum(2),
        {"keepdims": 0},
        {"axes": np.array([2], np.int64)},
        ("x", "axes"),
    ),
    Case("Flatten", {"x": randn(2, 3, 4)}, lambda x: x.flatten(1), {"axis": 1}),
    Case(
        "Reshape",
        {"x": randn(2, 3, 4)},
        lambda x: x.reshape(2, 4, 3),
        constants={"shape": np.array([0, 4, -1], np.int64)},
        order=("x", "shape"),
    ),
    Case(
        "Squeeze",
        {"x": randn(2, 3, 1, 4)},
        lambda x: x.squeeze(2),
        constants={"axes": np.array([2], np.int64)},
        order=("x", "axes"),
    ),
    Case(
        "Unsqueeze",
        {"x": randn(2, 3)},
        lambda x: x.unsqueeze(1),
        constants={"axes": np.array([1], np.int64)},
        order=("x", "axes"),
    ),
    Case(
        "Transpose",
        {"x": randn(2, 3, 4, 5)},
        lambda x: x.permute(0, 2, 3, 1),
        {"perm": [0, 2, 3, 1]},
    ),
    Case(
        "Concat",
        {"x": randn(2, 3, 4), "z": randn(2, 2, 4)},
        lambda x, z: torch.cat([x, z], 1),
        {"axis": 1},
    ),
    Case(
        "Split",
        {"x": randn(2, 5, 4)},
        lambda x: torch.split(x, [2, 3], 1),
        {"axis": 1},
        {"split": np.array([2, 3], np.int64)},
        ("x", "split"),
        outputs=2,
    ),
    Case(
        "Slice",
        {"x": randn(2, 3, 7)},
        lambda x: x[:, :, 1:6:2],
        constants={
            k: np.array(v, np.int64)
            for k, v in zip(("st", "en", "ax", "sp"), ([1], [6], [2], [2]), strict=True)
        },
        order=("x", "st", "en", "ax", "sp"),
    ),
    Case(
        "Pad",
        {"x": randn(2, 3, 4, 5)},
        lambda x: F.pad(x, (2, 1, 1, 2)),
        constants={"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)},
        order=("x", "pads"),
    ),
    Case(
        "Expand",
        {"x": randn(2, 3, 1, 5)},
        lambda x: x.expand(2, 3, 4, 5),
        constants={"shape": np.array([1, 3, 4, 5], np.int64)},
        order=("x", "shape"),
    ),
    Case(
        "LayerNormalization",
        {"x": randn(2, 5, 6)},
        lambda x: F.layer_norm(x, (6,), _t(LN_SCALE), _t(LN_BIAS), 1e-5),
        {"axis": -1, "epsilon": 1e-5},
        {"s": LN_SCALE, "b": LN_BIAS},
        ("x", "s", "b"),
    ),
    Case("Gelu", {"x": randn(2, 3, 4, scale=2)}, F.gelu, opset=20),
    Case(
        "Gelu",
        {"x": randn(2, 3, 4, scale=2)},
        lambda x: F.gelu(x, approximate="tanh"),
        {"approximate": "tanh"},
        opset=20,
        label="Gelu-tanh",
    ),
    Case("Erf", {"x": randn(2, 3, 4)}, torch.erf),
    Case(
        "Pow",
        {"x": away_from_zero(2, 3, 4)},
        lambda x: x**3,
        constants={"p": np.float32(3.0)},
        order=("x", "p"),
    ),
    Case("Sqrt", {"x": np.abs(away_from_zero(2, 3, 4))}, torch.sqrt),
    Case("Reciprocal", {"x": away_from_zero(2, 3, 4)}, torch.reciprocal),
    Case("Exp", {"x": randn(2, 3, 4)}, torch.exp),
    Case("Log", {"x": np.abs(away_from_zero(2, 3, 4))}, torch.log),
    Case(
        "Max",
        {"x": TIES_A, "z": TIES_B},
        torch.maximum,
        label="Max-with-ties",
    ),
    Case("Min", {"x": randn(2, 3, 4), "z": randn(3, 1)}, torch.minimum, label="Min-broadcast"),
    Case(
        "Where",
        {"x": randn(2, 3, 4), "z": randn(2, 3, 4)},
        lambda x, z: torch.where(torch.from_numpy(WHERE), x, z),
        constants={"c": WHERE},
        order=("c", "x", "z"),
    ),
    Case(
        "Gather",
        {"x": randn(2, 5, 4)},
        lambda x: x[:, 0],
        {"axis": 1},
        {"i": np.array(0, np.int64)},
        ("x", "i"),
        label="Gather-class-token",
    ),
    Case(
        "Gather",
        {"x": randn(2, 5, 4)},
        lambda x: x[:, _t(GATHER_ROWS)],
        {"axis": 1},
        {"i": GATHER_ROWS},
        ("x", "i"),
        label="Gather-2d-repeated",
    ),
    Case(
        "GatherElements",
        {"x": randn(2, 5, 4)},
        lambda x: torch.gather(x, 1, _t(GATHER_ELEMENTS)),
        {"axis": 1},
        {"i": GATHER_ELEMENTS},
        ("x", "i"),
    ),
    Case(
        "Einsum",
        {"x": randn(2, 3, 4, 5), "z": randn(2, 3, 6, 5)},
        lambda x, z: torch.einsum("bhqd,bhkd->bhqk", x, z),
        {"equation": "bhqd,bhkd->bhqk"},
    ),
    Case(
        "Resize",
        {"x": randn(2, 3, 4, 5)},
        lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
        {"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 2, 2], np.float32)},
        ("x", "roi", "scales"),
    ),
]


def one_op_model(case: Case):
    outputs = [f"y{i}" for i in range(case.outputs)]
    node = helper.make_node(case.op, list(case.order or case.inputs), outputs, **case.attrs)
    batch = case.inputs["x"].shape
    inputs = [  # inputs shaped like x carry the batch axis; smaller ones broadcast
        helper.make_tensor_value_info(
            name,
            TensorProto.FLOAT,
            ["N", *value.shape[1:]]
            if value.ndim == len(batch) and value.shape[0] == batch[0]
            else list(value.shape),
        )
        for name, value in case.inputs.items()
    ]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in case.constants.items()]
    graph = helper.make_graph(
        [node],
        case.id,
        inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", case.opset)], ir_version=10
    )
    return model, outputs


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_equals_torch_autograd(case):
    model, outputs = one_op_model(case)
    wrt = list(case.inputs)
    backward = build(model, GRADIENT, outputs, wrt, outputs)
    session = open_session(backward)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in case.inputs.items()}
    result = case.torch_fn(*tensors.values())
    results = result if isinstance(result, tuple) else (result,)
    seeds = {seed_name(o): randn(*r.shape) for o, r in zip(outputs, results, strict=True)}
    total = sum(
        (r * torch.from_numpy(s)).sum() for r, s in zip(results, seeds.values(), strict=True)
    )
    total.backward()
    got = session.run([grad_name(name) for name in wrt], {**case.inputs, **seeds})
    for name, value in zip(wrt, got, strict=True):
        want = tensors[name].grad.numpy()
        scale = max(1.0, float(np.abs(want).max()))
        assert value.shape == want.shape, f"{case.op}: d/d{name} shape"
        assert np.abs(value - want).max() <= 1e-5 * scale, f"{case.op}: d/d{name}"


def test_every_gradient_rule_has_a_case():
    assert set(GRADIENT.rules) == {case.op for case in CASES}
