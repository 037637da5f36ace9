"""ONNX graph work that runs no model: load, read (one ModelInfo per model), find layers,
rewrite (expose, split, scale), and build nodes.

- `load`: parse and check a file, bytes or ModelProto.
- `info`: tensor specs from shape inference, producers, constants, opset, input, class scores.
- `layers`: candidate layers, the `auto` pick, names given by the user.
- `tokens`: which tensors are feature maps; transformer tokens read as one (`as_feature_map`).
- `surgery`: expose tensors as outputs, cut at a tensor, scale a layer's channels.
- `builder`: appending nodes with fresh names, shared by backward graphs and served explainers.
"""

from onnxcam.engine.graph.info import (
    FLOAT_TYPES,
    Dim,
    ModelInfo,
    TensorSpec,
    attributes,
    elem_type,
    has_subgraph,
    infer_shapes,
    info_of,
    logits_tensor,
    model_input,
    numpy_dtype,
    opset_version,
    producers,
    refuse_subgraphs,
    tensor_specs,
    type_name,
)
from onnxcam.engine.graph.layers import (
    LayerInfo,
    auto_layer,
    candidates,
    find_layer,
    list_layers,
    prediction_features,
    resolve_layer,
)
from onnxcam.engine.graph.load import load
from onnxcam.engine.graph.surgery import (
    CHANNEL_SCALE,
    Split,
    at_least_opset,
    batch_input,
    expose,
    exposed_name,
    inline_function_ops,
    needed_nodes,
    read_through,
    scale_channels,
    split,
    static_nodes,
    unshare_weights,
    with_input_size,
)

__all__ = [
    "CHANNEL_SCALE",
    "FLOAT_TYPES",
    "Dim",
    "LayerInfo",
    "ModelInfo",
    "Split",
    "TensorSpec",
    "at_least_opset",
    "attributes",
    "auto_layer",
    "batch_input",
    "candidates",
    "elem_type",
    "expose",
    "exposed_name",
    "find_layer",
    "has_subgraph",
    "infer_shapes",
    "info_of",
    "inline_function_ops",
    "list_layers",
    "load",
    "logits_tensor",
    "model_input",
    "needed_nodes",
    "numpy_dtype",
    "opset_version",
    "prediction_features",
    "producers",
    "read_through",
    "refuse_subgraphs",
    "resolve_layer",
    "scale_channels",
    "split",
    "static_nodes",
    "tensor_specs",
    "type_name",
    "unshare_weights",
    "with_input_size",
]
