"""One self-contained ONNX graph that explains: input batch -> (logits, explained class, map).

The graph holds the model's forward pass with the target layer kept, ArgMax for the class, the
method's perturbations built in-graph, their passes run in a Loop over blocks of `chunk`
(image, channel) or (image, location) items so that memory stays at chunk perturbed inputs
(blocks.py), then weighting,
ReLU, resize (linear, half_pixel: PyTorch's align_corners=False) and min-max normalisation with
the engine's epsilon and constant-map rule. Any ONNX runtime or inference server runs it with no
Python. The numbers are the engine's default profiles (each method's module says which).

The explained output is read by its kind (heads.py): class scores as they are, a dense map as
each class's auto region, raw detections as each class's best box; the `logits` output holds
those per-class scores.

Options: `target_input` adds an int64 input `target_class` (N,), the class of each row (-1: the top
one); `all_classes` returns the maps of every class at once, (N, classes, H, W), each row of
an (image, class) pair weighted as its own explanation; `uint8` scales the map to 0..255 and
rounds it in the graph, so a server sends a quarter of the bytes.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxcam.engine import graph, metadata
from onnxcam.engine.graph import outputs, tokens
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.postprocess import MAP_EPS
from onnxcam.errors import ArgumentError, LayerError, ModelError
from onnxcam.io.inputs import input_channels
from onnxcam.serving.explainer.ablation_cam import ablation_cam
from onnxcam.serving.explainer.blocks import minmax, resize, weights_into_bodies
from onnxcam.serving.explainer.heads import head_for
from onnxcam.serving.explainer.recipro_cam import recipro_cam
from onnxcam.serving.explainer.score_cam import score_cam
from onnxcam.serving.explainer.site import Site

BUILDERS = {"score-cam": score_cam, "recipro-cam": recipro_cam, "ablation-cam": ablation_cam}
METHODS = tuple(BUILDERS)
OUTPUTS = ("logits", "target", "map")
TARGET_INPUT = "target_class"
METADATA_KEY = "onnxcam.explainer"
MIN_OPSET = 13  # Resize without roi, ReduceSum with axes as input
DEFAULT_CHUNK = 16
PREFIX = "onnxcam/"
#: The model's tensors named like the explainer's outputs and input, renamed out of the way.
RENAMED = {name: f"{PREFIX}model/{name}" for name in (*OUTPUTS, TARGET_INPUT)}


def build_explainer(
    model: onnx.ModelProto,
    method: str = "score-cam",
    layer: str = "auto",
    chunk: int = DEFAULT_CHUNK,
    target_input: bool = False,
    all_classes: bool = False,
    uint8: bool = False,
    output: str | None = None,
    output_kind: str | None = None,
    size: tuple[int, int] | None = None,
) -> onnx.ModelProto:
    """The explainer graph of `model` at `layer`: input batch (and `target` where
    target_input) -> logits, target, map (see the module docstring for the options);
    `output` (default the first) and `output_kind` choose the explained output as
    Explainer's do; `size` (H, W) fixes the free spatial axes of the input (a detector exported
    for any size), which the graph's layer shape needs known."""
    if method not in BUILDERS:
        raise ArgumentError(
            f"unknown method {method!r} for an explainer graph: expected one of "
            f"{', '.join(METHODS)}"
        )
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ArgumentError(f"chunk must be a positive integer, got {chunk!r}")
    model = graph.at_least_opset(graph.load(model), MIN_OPSET, "explainer graphs")
    if size is not None:
        channels = input_channels(graph.ModelInfo(model).input.shape)
        model = graph.with_input_size(model, (1, channels, *size))
    explained = outputs.choose(graph.ModelInfo(model), output, output_kind)  # the user's names
    output_name = explained.name
    explained = dataclasses.replace(explained, name=RENAMED.get(output_name, output_name))
    info = graph.ModelInfo(outputs.with_first_output(_free_output_names(model), explained.name))
    chosen = graph.find_layer(info, layer)
    layer = chosen.name
    if chosen.grid is not None:  # transformer tokens: explained as their (N, D, h, w) map
        model, layer = tokens.as_feature_map(info.model, info, layer, chosen.grid)
        info = graph.ModelInfo(model)
    spec = info.input
    if spec.elem_type != TensorProto.FLOAT or spec.shape is None or len(spec.shape) != 4:
        raise ModelError(
            f"an explainer graph needs a float32 input of shape (N, C, H, W), got "
            f"{helper.tensor_dtype_to_np_dtype(spec.elem_type)} {spec.shape}"
        )
    if isinstance(spec.shape[0], int):
        raise ModelError(
            f"the model's input has a fixed batch of {spec.shape[0]}: an explainer graph runs "
            "perturbed batches through it, re-export with a dynamic batch axis"
        )
    layer_shape = info.specs[layer].shape if layer in info.specs else None
    if (
        layer_shape is None
        or len(layer_shape) != 4
        or not all(isinstance(d, int) for d in layer_shape[1:])
    ):
        raise LayerError(
            f"layer {layer!r} has shape {layer_shape}: an explainer graph needs (N, K, h, w) "
            "with K, h, w known from shape inference (a model with a free input size: give the "
            "size, --size HxW)"
        )
    initializers = list(info.model.graph.initializer)
    b = NodeBuilder(info.opset, PREFIX, initializers)
    x = spec.name
    head = head_for(b, explained, info.logits)
    logits = head.top
    targets = b.op("ArgMax", [logits], axis=1, keepdims=0)
    if target_input:  # -1: the top class
        given = TARGET_INPUT
        below = b.op("Less", [given, b.const(0, np.int64)])
        targets = b.op("Where", [below, targets, given])
    classes = head.n_classes if all_classes else None
    size_hw = b.dims(x, 2, 4)
    site = Site(b, info, x, layer, head, targets, size_hw, tuple(layer_shape[1:]), chunk, classes)
    raw = BUILDERS[method](site)
    cam = minmax(b, resize(b, raw, size_hw), [2, 3], MAP_EPS)
    per_image = [b.dims(x, 0, 1)] if classes is None else [b.dims(x, 0, 1), [classes]]
    cam = b.reshape(cam, [*per_image, size_hw])
    if uint8:
        scaled = b.op("Round", [b.op("Mul", [cam, b.const(255.0, np.float32)])])
        cam = b.op("Cast", [scaled], to=TensorProto.UINT8)
    final = [logits, targets, cam]
    b.nodes.extend(
        helper.make_node("Identity", [src], [dst], name=f"{PREFIX}{dst}")
        for src, dst in zip(final, OUTPUTS, strict=True)
    )
    main = graph.needed_nodes(info.model.graph.node, [head.source, layer, *_outer_reads(b.nodes)])
    explainer = _assemble(
        info, main + b.nodes, initializers, method, x, head.n_classes, target_input, uint8
    )
    if classes is not None:
        dims = explainer.graph.output[2].type.tensor_type.shape.dim
        dims.insert(1, onnx.TensorShapeProto.Dimension(dim_value=classes))
    info_entry = {
        "method": method,
        "layer": layer,
        "chunk": chunk,
        "outputs": OUTPUTS,
        "input": x,
        "cost_per_image": cost_per_image(method, tuple(layer_shape[1:])),
        "target_input": target_input,
        "all_classes": all_classes,
        "uint8": uint8,
        "output": output_name,
        "output_kind": explained.kind,
    }
    explainer.metadata_props.add(key=METADATA_KEY, value=json.dumps(info_entry))
    weights_into_bodies(explainer)
    onnx.checker.check_model(explainer)
    return explainer


def cost_per_image(method: str, layer_shape: tuple[int, ...]) -> dict[str, int | str]:
    """What the graph runs per input image: one forward pass, then `passes` runs of the whole
    model (`through` model) or of the part after the layer (`tail`), one per channel or
    location of the (K, h, w) layer (at most, as on the host: for Score-CAM a channel
    constant in the image runs none and channels with equal normalised maps share one, for
    Ablation-CAM an all-zero channel runs none)."""
    channels, height, width = layer_shape
    if method == "recipro-cam":
        return {"forward": 1, "passes": height * width, "through": "tail", "per": "location"}
    through = "model" if method == "score-cam" else "tail"
    return {"forward": 1, "passes": channels, "through": through, "per": "channel"}


def _assemble(
    info: graph.ModelInfo,
    nodes,
    initializers,
    method: str,
    x: str,
    classes: int,
    target_input: bool,
    uint8: bool,
) -> onnx.ModelProto:
    """The explainer model: the nodes, the model's input (and the target input), the three
    outputs, its metadata."""
    model, spec = info.model, info.input
    n_dim = spec.shape[0] if isinstance(spec.shape[0], str) else "N"
    outputs = [
        helper.make_tensor_value_info(OUTPUTS[0], TensorProto.FLOAT, [n_dim, classes]),
        helper.make_tensor_value_info(OUTPUTS[1], TensorProto.INT64, [n_dim]),
        helper.make_tensor_value_info(
            OUTPUTS[2], TensorProto.UINT8 if uint8 else TensorProto.FLOAT, [n_dim, *spec.shape[2:]]
        ),
    ]
    inputs = [next(v for v in model.graph.input if v.name == x)]
    if target_input:
        inputs.append(helper.make_tensor_value_info(TARGET_INPUT, TensorProto.INT64, [n_dim]))
    body = helper.make_graph(
        nodes,
        f"{model.graph.name or 'model'}_{method.replace('-', '_')}",
        inputs,
        outputs,
        initializers,
    )
    explainer = helper.make_model(
        body, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
    explainer.functions.extend(model.functions)
    kept = [p for p in model.metadata_props if p.key != metadata.LAYER_MAP_KEY]
    explainer.metadata_props.extend(kept)
    return explainer


def _free_output_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its tensors named like the explainer's outputs renamed out of the way."""
    g = model.graph
    if graph.model_input(model).name in OUTPUTS:
        raise ModelError(
            f"the model's input is named {graph.model_input(model).name!r}: expected a name "
            f"other than the explainer's outputs {', '.join(OUTPUTS)}"
        )
    for node in g.node:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                field[i] = RENAMED.get(name, name)
    for value in [*g.output, *g.value_info, *g.initializer]:
        value.name = RENAMED.get(value.name, value.name)
    return model


def _outer_reads(nodes: list[onnx.NodeProto]) -> list[str]:
    """Names that nodes (and their Loop bodies) read: the model tensors the explainer needs."""
    reads = []
    for node in nodes:
        reads.extend(node.input)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                reads.extend(_outer_reads(list(attr.g.node)))
    return [r for r in reads if r]
