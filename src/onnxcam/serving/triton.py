"""A Triton Inference Server model repository for an explainer graph.

Layout (Triton's model repository): DIR/<name>/config.pbtxt and DIR/<name>/1/model.onnx, which
Triton's onnxruntime backend loads. The config declares the graph's input and outputs without
their batch axis (max_batch_size > 0 makes it implicit) and turns dynamic batching on, so that
Triton merges concurrent requests into one run of the graph.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnx
from google.protobuf import text_encoding
from onnx import TensorProto

from onnxcam.engine import graph
from onnxcam.errors import ArgumentError, ModelError
from onnxcam.io import prepare_dir, write_atomic

#: ONNX element types -> Triton's DataType names (model_config.proto).
TRITON_TYPES = {
    TensorProto.FLOAT: "TYPE_FP32",
    TensorProto.FLOAT16: "TYPE_FP16",
    TensorProto.DOUBLE: "TYPE_FP64",
    TensorProto.BFLOAT16: "TYPE_BF16",
    TensorProto.INT64: "TYPE_INT64",
    TensorProto.INT32: "TYPE_INT32",
    TensorProto.UINT8: "TYPE_UINT8",
    TensorProto.BOOL: "TYPE_BOOL",
}
#: --instance-kind values -> ModelInstanceGroup.Kind names.
INSTANCE_KINDS = {"auto": "KIND_AUTO", "cpu": "KIND_CPU", "gpu": "KIND_GPU"}
PLATFORM = "onnxruntime_onnx"
BACKEND = "onnxruntime"
MODEL_FILE = "model.onnx"
MODEL_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def quoted(text: str) -> str:
    """A string as the protobuf text format writes it: quotes, backslashes, newlines and
    control characters escaped, so that no name can end its field and add others."""
    return f'"{text_encoding.CEscape(text, as_utf8=True)}"'


def _tensor_block(value: onnx.ValueInfoProto, spec: graph.TensorSpec) -> str:
    """One `input`/`output` entry: name, data type and dims after the batch axis (-1 if free)."""
    elem = value.type.tensor_type.elem_type
    if elem not in TRITON_TYPES:
        raise ModelError(
            f"tensor {value.name!r} has ONNX type {graph.type_name(elem)}: expected one "
            f"of {', '.join(graph.type_name(t) for t in TRITON_TYPES)}"
        )
    if spec.shape is None or len(spec.shape) < 1 or isinstance(spec.shape[0], int):
        raise ModelError(
            f"tensor {value.name!r} has shape {spec.shape}: expected a free batch axis first"
        )
    dims = ", ".join(str(d) if isinstance(d, int) else "-1" for d in spec.shape[1:])
    # a tensor of shape (batch,) is written Triton's way: dims [1], reshaped to no dims
    shape = f"dims: [ {dims} ]" if dims else "dims: [ 1 ]\n    reshape: { shape: [ ] }"
    name = quoted(value.name)
    return f"  {{\n    name: {name}\n    data_type: {TRITON_TYPES[elem]}\n    {shape}\n  }}"


def config_text(
    model: onnx.ModelProto,
    name: str,
    max_batch_size: int = 32,
    instance_kind: str = "auto",
    instances: int = 1,
    max_queue_delay_us: int = 100,
) -> str:
    """The config.pbtxt text (protobuf text format of Triton's ModelConfig) for `model`."""
    if max_batch_size < 1:
        raise ArgumentError(f"max_batch_size must be >= 1, got {max_batch_size}")
    if instances < 1:
        raise ArgumentError(f"instances must be >= 1, got {instances}")
    if instance_kind not in INSTANCE_KINDS:
        raise ArgumentError(
            f"instance kind must be one of {', '.join(INSTANCE_KINDS)}, got {instance_kind!r}"
        )
    specs = graph.tensor_specs(model)
    inputs = ",\n".join(_tensor_block(v, specs[v.name]) for v in model.graph.input)
    outputs = ",\n".join(_tensor_block(v, specs[v.name]) for v in model.graph.output)
    return (
        f"name: {quoted(name)}\n"
        f'platform: "{PLATFORM}"\n'
        f'backend: "{BACKEND}"\n'
        f"max_batch_size: {max_batch_size}\n"
        f"input [\n{inputs}\n]\n"
        f"output [\n{outputs}\n]\n"
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_queue_delay_us}\n}}\n"
        f"instance_group [\n  {{\n    count: {instances}\n"
        f"    kind: {INSTANCE_KINDS[instance_kind]}\n  }}\n]\n"
    )


def write_repository(
    model: onnx.ModelProto, directory: str | Path, name: str = "explainer", **config
) -> Path:
    """Write DIR/<name>/config.pbtxt and DIR/<name>/1/model.onnx; returns DIR/<name>."""
    if not MODEL_NAME.fullmatch(name):
        raise ArgumentError(
            f"model name must be a plain directory name, got {name!r} (expected letters, "
            "digits, '_', '-' and '.', not starting with '.')"
        )
    text = config_text(model, name, **config)
    folder = prepare_dir(Path(directory) / name)
    write_atomic(prepare_dir(folder / "1") / MODEL_FILE, model.SerializeToString())
    write_atomic(folder / "config.pbtxt", text.encode())
    return folder
