"""What a model must be, and what its outputs must hold, before a method uses them: a float
input, class scores (N, K) rather than a dense map, finite scores and activations, and
activations of a size a machine can hold. Each failure is one error that names what came.
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import shape_inference

from onnxcam.engine.graph import FLOAT_TYPES, ModelInfo, TensorSpec, type_name
from onnxcam.errors import LayerError, ModelError

#: Largest tensor a model may compute for one input (256 MiB of float32): a model that declares
#: more (a Conv padded by a million, say) is refused before it runs, not after it took the RAM.
MAX_ACTIVATION_ELEMENTS = 2**26
#: Most values one tensor may hold for a whole ORT batch (1 GiB of float32): inputs whose
#: largest tensor is big run in smaller batches (`batch_size_for`).
MAX_BATCH_ELEMENTS = 2**28


def dims_text(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def check_input(spec: TensorSpec) -> None:
    """The data input must be a float tensor."""
    if spec.elem_type not in FLOAT_TYPES:
        name = type_name(spec.elem_type)
        raise ModelError(
            f"the model's input {spec.name!r} is {name}: expected a float input "
            "(float32, float16 or float64), which inputs can be perturbed in"
        )


def dense_map_error(name: str, shape) -> ModelError:
    return ModelError(
        f"the model's output {name!r} has shape {dims_text(shape)}: a dense map (scores per "
        "position), not class scores (N, K); expected a classifier's output, or a region "
        "target (region:CLASS[:mask.png])"
    )


def check_class_scores(info: ModelInfo) -> None:
    """Refuse a class-score tensor whose declared shape is a dense map or a scalar per input."""
    spec = info.specs.get(info.logits)
    shape = None if spec is None else spec.shape
    if shape is None:
        return
    if len(shape) == 1:
        raise ModelError(
            f"the model's output {info.logits!r} has shape {dims_text(shape)}: expected class "
            "scores (N, K), one row per input"
        )
    spatial = shape[2:]
    if all(isinstance(d, int) for d in spatial) and int(np.prod(spatial)) > 1:
        raise dense_map_error(info.logits, shape)


def class_scores_2d(logits: np.ndarray, name: str) -> np.ndarray:
    """(N, K) class scores from what the model returned, or the error that says what it is."""
    if logits.ndim < 2:
        raise ModelError(
            f"the model's output {name!r} has shape {logits.shape}: expected class scores (N, K)"
        )
    if logits.ndim > 2 and int(np.prod(logits.shape[2:])) > 1:
        raise dense_map_error(name, ("N", *logits.shape[1:]))
    return logits.reshape(len(logits), -1)


def not_finite(values: np.ndarray) -> list[int]:
    """Indices of the rows (inputs) holding NaN or Inf."""
    return np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1)).tolist()


def check_finite(values: np.ndarray, what: str) -> None:
    """Refuse NaN or Inf, naming the inputs where they are."""
    if np.isfinite(values).all():  # the usual case, in two numpy calls
        return
    bad = not_finite(values)
    if bad:
        raise ModelError(
            f"{what} are NaN or Inf for inputs {bad[:10]}{' ...' if len(bad) > 10 else ''}: "
            "expected finite values (NaN weights or a float overflow in the model?)"
        )


def check_layer(activations: np.ndarray, layer: str) -> None:
    if activations.ndim not in (3, 4) or all(d == 1 for d in activations.shape[2:]):
        raise LayerError(
            f"layer {layer!r} has shape {activations.shape}: expected (N, K, H, W) or "
            "(N, K, T) with spatial size > 1"
        )
    check_finite(activations, f"the activations of layer {layer!r}")


def concrete_shapes(info: ModelInfo, input_shape: tuple[int, ...]) -> dict[str, tuple]:
    """Static shapes of every tensor for one input of `input_shape` (batch 1), by shape
    inference on a copy whose input is fixed to that size."""
    model = copy.deepcopy(info.model)
    value = next(v for v in model.graph.input if v.name == info.input.name)
    dims = value.type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, *input_shape[1:]), strict=False):
        dim.Clear()
        dim.dim_value = int(size)
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference is best effort: ORT may still run what it cannot infer
        return {}
    shapes = {}
    for v in [*inferred.graph.value_info, *inferred.graph.output]:
        tensor = v.type.tensor_type
        if tensor.HasField("shape"):
            shape = tuple(
                d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim
            )
            if all(isinstance(d, int) and d >= 0 for d in shape):
                shapes[v.name] = shape
    return shapes


def check_compute(info: ModelInfo, input_shape: tuple[int, ...]) -> int:
    """The largest tensor (values) the model computes for one input of `input_shape`; a model
    that would compute one beyond MAX_ACTIVATION_ELEMENTS is refused before it runs."""
    largest = int(np.prod(input_shape, dtype=np.float64))
    for name, shape in concrete_shapes(info, input_shape).items():
        elements = int(np.prod(shape, dtype=np.float64))
        if elements > MAX_ACTIVATION_ELEMENTS:
            raise ModelError(
                f"for one input of shape {tuple(input_shape[1:])} the model computes tensor "
                f"{name!r} of shape {dims_text(shape)} ({elements:.3g} values): expected at "
                f"most {MAX_ACTIVATION_ELEMENTS:.3g} values per tensor and input"
            )
        largest = max(largest, elements)
    return largest


def batch_size_for(batch_size: int, largest: int) -> int:
    """The batch size to run at: at most `batch_size`, and small enough that the largest
    tensor of a batch holds at most MAX_BATCH_ELEMENTS values."""
    return max(1, min(batch_size, MAX_BATCH_ELEMENTS // max(1, largest)))


def head_size_hint(info: ModelInfo, input_shape: tuple[int, ...]) -> str:
    """Why a model with free spatial axes fails at this input size, where its head is a
    Flatten (or Reshape) -> Gemm/MatMul of fixed width: the size that head was made for."""
    shapes = concrete_shapes(info, input_shape)
    spatial = tuple(input_shape[2:])
    for node in info.model.graph.node:
        if node.op_type not in ("Gemm", "MatMul") or len(node.input) < 2:
            continue
        weight = next((t for t in info.model.graph.initializer if t.name == node.input[1]), None)
        source = info.producers.get(node.input[0])
        if weight is None or source is None or source.op_type not in ("Flatten", "Reshape"):
            continue
        grid = shapes.get(source.input[0])
        if grid is None or len(grid) != len(input_shape):
            continue
        transposed = node.op_type == "Gemm" and any(
            a.name == "transB" and a.i for a in node.attribute
        )
        width = weight.dims[1] if transposed else weight.dims[0]
        per_channel = width / grid[1]
        factor = [s / g for s, g in zip(spatial, grid[2:], strict=True) if g]
        side = per_channel ** (1 / len(spatial))
        if len(factor) == len(spatial) and abs(side - round(side)) < 1e-6:
            needed = tuple(round(side * f) for f in factor)
            shown = "x".join(map(str, needed))
            return (
                f"; the model declares free spatial axes, but its {source.op_type} -> "
                f"{node.op_type} head is {width} wide: it runs at {shown} "
                f"(got {'x'.join(map(str, spatial))}; pass --size {shown})"
            )
    return ""
