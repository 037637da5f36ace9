"""One self-contained ONNX graph that explains: input batch -> (logits, top class, map).

The graph holds the model's forward pass with the target layer kept, ArgMax for the class, the
method's perturbations built in-graph, their passes run in a Loop over blocks of `chunk`
channels (or locations) so that memory stays at batch x chunk perturbed inputs, then weighting,
ReLU, resize (linear, half_pixel: PyTorch's align_corners=False) and min-max normalisation with
the engine's epsilon and constant-map rule. Any ONNX runtime or inference server runs it with no
Python. The numbers are the engine's default profiles:

- `score-cam` (paper profile): masks Resize(A_k) min-max normalised (eps 1e-8, a constant channel
  gives weight 0), class logit of X * mask, softmax over the non-constant channels. Every channel
  runs its pass (the host pipeline skips constant channels and shares equal masks).
- `ablation-cam` (tail mode, value 0): w_k = (y - y_k) / y on the graph's tail after the layer.
- `recipro-cam` (no spreading kernel): class probability of the tail on one feature map per
  location; min-max normalised at layer resolution before the resize.

The forward model (or its tail, from `graph.split`) is copied into the Loop body with its tensors
renamed under a prefix; weights stay in the outer graph and are read from the body's outer scope.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxcam.engine import graph, metadata
from onnxcam.engine.methods.score_cam import PROFILES
from onnxcam.engine.postprocess import PostProcess
from onnxcam.errors import LayerError, ModelError

METHODS = ("score-cam", "recipro-cam", "ablation-cam")
OUTPUTS = ("logits", "target", "map")
METADATA_KEY = "onnxcam.explainer"
MIN_OPSET = 13
DEFAULT_CHUNK = 16
MASK_EPS = PROFILES["paper"].mask_eps
MAP_EPS = PostProcess().eps
SAFE_SCORE = 1e-12  # |y| below this gives ablation weights 0, as in the engine
_PREFIX = "onnxcam/"


class _Builder:
    """Appends nodes with unique tensor names; writes the ops whose form changes with the opset."""

    def __init__(self, opset: int, prefix: str, initializers: list[onnx.TensorProto]) -> None:
        self.opset, self.prefix = opset, prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers = initializers  # shared with the outer graph: bodies read them there
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def op(self, op_type: str, inputs: list[str], hint: str = "", **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def const(self, value, dtype=np.int64, hint: str = "const") -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def reduce(self, op_type: str, x: str, axes: list[int], keepdims: int = 1) -> str:
        """ReduceX over axes: axes as an input from opset 18 (ReduceSum: 13), else an attribute."""
        if self.opset >= (13 if op_type == "ReduceSum" else 18):
            return self.op(op_type, [x, self.const(axes)], keepdims=keepdims)
        return self.op(op_type, [x], axes=axes, keepdims=keepdims)

    def dims(self, x: str, start: int, end: int) -> str:
        """Shape(x)[start:end] as a 1-D int64 tensor."""
        return self.op(
            "Slice", [self.op("Shape", [x]), self.const([start]), self.const([end])], "dims"
        )

    def reshape(self, x: str, parts: list[str | list[int]]) -> str:
        """Reshape x to the concatenation of shape pieces (tensor names or literal lists)."""
        pieces = [p if isinstance(p, str) else self.const(p) for p in parts]
        shape = pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, "shape", axis=0)
        return self.op("Reshape", [x, shape])

    def resize(self, x: str, size_hw: str) -> str:
        """Bilinear resize of the last two axes of a 4-D x to size_hw (half_pixel sampling)."""
        sizes = self.op("Concat", [self.dims(x, 0, 2), size_hw], "sizes", axis=0)
        return self.op(
            "Resize",
            [x, "", "", sizes],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        )

    def minmax(self, x: str, axes: list[int], eps: float) -> str:
        """(x - min) / (max - min + eps) per map over `axes`; a constant map becomes zeros."""
        lo = self.reduce("ReduceMin", x, axes)
        span = self.op("Sub", [self.reduce("ReduceMax", x, axes), lo])
        zero = self.const(0.0, np.float32)
        scale = self.op(
            "Where",
            [
                self.op("Greater", [span, zero]),
                self.op("Reciprocal", [self.op("Add", [span, self.const(eps, np.float32)])]),
                zero,
            ],
        )
        return self.op("Mul", [self.op("Sub", [x, lo]), scale])

    def pick(self, scores: str, targets: str, n_items: int) -> str:
        """scores (N, c, classes) -> (N, c): the value at each image's target class."""
        shape = self.op("Concat", [self.dims(scores, 0, 1), self.const([n_items, 1])], axis=0)
        index = self.op("Expand", [self.reshape(targets, [[-1, 1, 1]]), shape])
        return self.reshape(self.op("GatherElements", [scores, index], axis=2), [[0, -1]])


def _needed(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes that `outputs` depend on, in graph order."""
    producers = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    needed: set[int] = set()
    stack = [producers[o] for o in outputs if o in producers]
    while stack:
        i = stack.pop()
        if i not in needed:
            needed.add(i)
            stack.extend(producers[name] for name in nodes[i].input if name in producers)
    return [nodes[i] for i in sorted(needed)]


def _inline(
    nodes: list[onnx.NodeProto], prefix: str, feeds: dict[str, str]
) -> tuple[list[onnx.NodeProto], dict[str, str]]:
    """Copies of `nodes` whose outputs are renamed under `prefix` and whose inputs named in
    `feeds` read other tensors; weights keep their names (read from the outer scope)."""
    names = dict(feeds)
    copies = []
    for node in nodes:
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            raise ModelError(
                f"node {node.name or node.op_type!r} holds a subgraph ({node.op_type}): expected "
                "a model without control flow for an explainer graph"
            )
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(names.get(name, name) for name in node.input)
        for j, out in enumerate(node.output):
            if out:
                names[out] = copy.output[j] = prefix + out
        copy.name = prefix + (node.name or node.output[0])
        copies.append(copy)
    return copies, names


class _Plan:
    """What the Loop body perturbs: a constant table with one row per block, and how a row and
    the layer's activations become the block's model (or tail) inputs."""

    def __init__(self, n_items: int, chunk: int) -> None:
        self.n_items, self.chunk = n_items, min(chunk, n_items)
        self.n_blocks = -(-n_items // self.chunk)

    def padded(self, rows: np.ndarray) -> np.ndarray:
        """(n_items, ...) rows -> (n_blocks, chunk, ...): the last row repeated as padding."""
        extra = self.n_blocks * self.chunk - len(rows)
        rows = np.concatenate([rows, np.repeat(rows[-1:], extra, axis=0)])
        return rows.reshape(self.n_blocks, self.chunk, *rows.shape[1:])


def _loop_scores(b: _Builder, plan: _Plan, body_scores) -> str:
    """(N, n_items) scores: a Loop over the plan's blocks, each scored by body_scores(bb, i)."""
    body = _Builder(b.opset, f"{b.prefix}body/", b.initializers)
    i, cond = body.name("iteration"), body.name("cond")
    scores = body_scores(body, i)
    cond_out = body.op("Identity", [cond], "cond_out")
    body_graph = helper.make_graph(
        body.nodes,
        "onnxcam_block",
        [
            helper.make_tensor_value_info(i, TensorProto.INT64, []),
            helper.make_tensor_value_info(cond, TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
            helper.make_tensor_value_info(scores, TensorProto.FLOAT, None),
        ],
    )
    stacked = b.op("Loop", [b.const(plan.n_blocks), ""], "blocks", body=body_graph)
    flat = b.reshape(b.op("Transpose", [stacked], perm=[1, 0, 2]), [[0, -1]])
    return b.op("Slice", [flat, b.const([0]), b.const([plan.n_items]), b.const([1])], "scores")


def _repeat_items(b: _Builder, t: str, chunk: int) -> str:
    """(N, *d) -> (N * chunk, *d): each image's tensor once per item of the block."""
    rest = b.dims(t, 1, 1 << 30)
    lifted = b.reshape(t, [b.dims(t, 0, 1), [1], rest])
    grown = b.op(
        "Expand", [lifted, b.op("Concat", [b.dims(t, 0, 1), b.const([chunk]), rest], axis=0)]
    )
    return b.reshape(grown, [[-1], rest])


class _Forward:
    """The model's nodes to copy into a Loop body: maps perturbed inputs to class scores."""

    def __init__(self, nodes: list[onnx.NodeProto], inputs: list[str], logits: str) -> None:
        self.nodes, self.inputs, self.logits = nodes, inputs, logits

    def scores(self, b: _Builder, feeds: list[str], chunk: int) -> str:
        """(N * chunk, classes) logits reshaped to (N, chunk, classes)."""
        copies, names = _inline(
            self.nodes, b.name("model") + "/", dict(zip(self.inputs, feeds, strict=True))
        )
        b.nodes.extend(copies)
        flat = b.reshape(names[self.logits], [[0, -1]])
        return b.reshape(flat, [[-1, chunk], b.dims(flat, 1, 2)])


def build_explainer(
    model: onnx.ModelProto,
    method: str = "score-cam",
    layer: str = "auto",
    chunk: int = DEFAULT_CHUNK,
) -> onnx.ModelProto:
    """The explainer graph of `model` at `layer`: input batch -> logits, target, map."""
    if method not in METHODS:
        raise ValueError(
            f"unknown method {method!r} for an explainer graph: expected one of "
            f"{', '.join(METHODS)}"
        )
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    model = _free_output_names(_at_least_opset(graph.load(model)))
    layer = graph.resolve_layer(model, layer)
    spec = graph.model_input(model)
    if spec.elem_type != TensorProto.FLOAT or spec.shape is None or len(spec.shape) != 4:
        raise ModelError(
            f"an explainer graph needs a float32 input of shape (N, C, H, W), got "
            f"{onnx.helper.tensor_dtype_to_np_dtype(spec.elem_type)} {spec.shape}"
        )
    if isinstance(spec.shape[0], int):
        raise ModelError(
            f"the model's input has a fixed batch of {spec.shape[0]}: an explainer graph runs "
            "perturbed batches through it, re-export with a dynamic batch axis"
        )
    specs = graph.tensor_specs(graph.infer_shapes(model))
    layer_shape = specs[layer].shape if layer in specs else None
    if (
        layer_shape is None
        or len(layer_shape) != 4
        or not all(isinstance(d, int) for d in layer_shape[1:])
    ):
        raise LayerError(
            f"layer {layer!r} has shape {layer_shape}: an explainer graph needs (N, K, h, w) "
            "with K, h, w known from shape inference"
        )
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    initializers = list(model.graph.initializer)
    b = _Builder(opset, _PREFIX, initializers)
    logits_tensor = graph.logits_tensor(model)
    nodes = list(model.graph.node)
    x, acts = spec.name, layer

    logits = b.reshape(logits_tensor, [[0, -1]])
    targets = b.op("ArgMax", [logits], "target", axis=1, keepdims=0)
    size_hw = b.dims(x, 2, 4)
    k, h, w = layer_shape[1:]
    if method == "score-cam":
        forward = _Forward(_needed(nodes, [logits_tensor]), [x], logits_tensor)
        raw = _score_cam(b, forward, x, acts, targets, size_hw, k, chunk)
    else:
        cut = graph.split(model, layer, [logits_tensor])
        tail_inputs = [cut.tensor, *cut.crossing]
        forward = _Forward(list(cut.tail.graph.node), tail_inputs, logits_tensor)
        if method == "ablation-cam":
            raw = _ablation_cam(b, forward, acts, cut.crossing, logits, targets, k, chunk)
        else:
            raw = _recipro_cam(b, forward, acts, cut.crossing, targets, (h, w), chunk)
    up = b.resize(raw, size_hw)
    cam = b.minmax(up, [2, 3], MAP_EPS)
    final = [logits, targets, b.reshape(cam, [b.dims(x, 0, 1), size_hw])]
    b.nodes.extend(
        helper.make_node("Identity", [src], [dst], name=f"{_PREFIX}{dst}")
        for src, dst in zip(final, OUTPUTS, strict=True)
    )
    main = _needed(nodes, [logits_tensor, layer, *_outer_reads(b.nodes)])
    n_dim = spec.shape[0] if isinstance(spec.shape[0], str) else "N"
    logit_spec = specs.get(logits_tensor)
    classes = (
        int(np.prod(logit_spec.shape[1:]))
        if logit_spec and logit_spec.shape and all(isinstance(d, int) for d in logit_spec.shape[1:])
        else None
    )
    outputs = [
        helper.make_tensor_value_info(OUTPUTS[0], TensorProto.FLOAT, [n_dim, classes]),
        helper.make_tensor_value_info(OUTPUTS[1], TensorProto.INT64, [n_dim]),
        helper.make_tensor_value_info(OUTPUTS[2], TensorProto.FLOAT, [n_dim, *spec.shape[2:]]),
    ]
    body = helper.make_graph(
        main + b.nodes,
        f"{model.graph.name or 'model'}_{method.replace('-', '_')}",
        [next(v for v in model.graph.input if v.name == x)],
        outputs,
        initializers,
    )
    explainer = helper.make_model(
        body, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
    explainer.functions.extend(model.functions)
    explainer.metadata_props.extend(
        p for p in model.metadata_props if p.key != metadata.LAYER_MAP_KEY
    )
    info = {"method": method, "layer": layer, "chunk": chunk, "outputs": OUTPUTS, "input": x}
    explainer.metadata_props.add(key=METADATA_KEY, value=json.dumps(info))
    onnx.checker.check_model(explainer)
    return explainer


def _free_output_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its tensors named like the explainer's outputs renamed out of the way."""
    graph_ = model.graph
    if graph.model_input(model).name in OUTPUTS:
        raise ModelError(
            f"the model's input is named {graph.model_input(model).name!r}: expected a name "
            f"other than the explainer's outputs {', '.join(OUTPUTS)}"
        )
    renamed = {name: f"{_PREFIX}model/{name}" for name in OUTPUTS}
    for node in graph_.node:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                field[i] = renamed.get(name, name)
    for value in [*graph_.output, *graph_.value_info, *graph_.initializer]:
        value.name = renamed.get(value.name, value.name)
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


def _at_least_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model at opset >= 13 (Resize without roi, ReduceSum with axes as input)."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if version >= MIN_OPSET:
        return model
    try:
        return onnx.version_converter.convert_version(model, MIN_OPSET)
    except Exception as err:  # the converter raises its own error types
        raise ModelError(
            f"the model's opset {version} cannot be converted to {MIN_OPSET}: {err}"
        ) from err


def _weighted_relu(b: _Builder, acts: str, weights: str) -> str:
    """ReLU(sum_k w_k A^k) as (N, 1, h, w)."""
    scaled = b.op("Mul", [acts, b.reshape(weights, [[0, 0, 1, 1]])])
    return b.op("Relu", [b.reduce("ReduceSum", scaled, [1])])


def _score_cam(b, forward, x, acts, targets, size_hw, k, chunk) -> str:
    plan = _Plan(k, chunk)
    table = b.const(plan.padded(np.arange(k)), hint="channels")

    def body(bb: _Builder, i: str) -> str:
        block = bb.op("Gather", [acts, bb.op("Gather", [table, i], axis=0)], axis=1)
        masks = bb.minmax(bb.resize(block, size_hw), [2, 3], MASK_EPS)
        masked = bb.op(
            "Mul",
            [
                bb.reshape(x, [bb.dims(x, 0, 1), [1], bb.dims(x, 1, 4)]),
                bb.reshape(masks, [[0, 0, 1], size_hw]),
            ],
        )
        items = bb.reshape(masked, [[-1], bb.dims(x, 1, 4)])
        return bb.pick(forward.scores(bb, [items], plan.chunk), targets, plan.chunk)

    scores = _loop_scores(b, plan, body)
    lo = b.reduce("ReduceMin", acts, [2, 3], keepdims=0)
    valid = b.op("Greater", [b.reduce("ReduceMax", acts, [2, 3], keepdims=0), lo], "valid")
    lowest = b.const(np.finfo(np.float32).min, np.float32)
    top = b.reduce("ReduceMax", b.op("Where", [valid, scores, lowest]), [1])
    zero = b.const(0.0, np.float32)
    e = b.op("Where", [valid, b.op("Exp", [b.op("Sub", [scores, top])]), zero])
    total = b.reduce("ReduceSum", e, [1])
    safe_total = b.op("Where", [b.op("Greater", [total, zero]), total, b.const(1.0, np.float32)])
    return _weighted_relu(b, acts, b.op("Div", [e, safe_total], "weights"))


def _tail_body(
    plan: _Plan, forward: _Forward, acts: str, crossing, targets, table: str, prob: bool
):
    """Loop body: A times the block's rows of `table`, through the tail; class logit or prob."""

    def body(bb: _Builder, i: str) -> str:
        rows = bb.op("Gather", [table, i], axis=0)  # (chunk, K or 1, h or 1, w or 1)
        lifted = bb.reshape(acts, [bb.dims(acts, 0, 1), [1], bb.dims(acts, 1, 4)])
        items = bb.reshape(bb.op("Mul", [lifted, rows]), [[-1], bb.dims(acts, 1, 4)])
        feeds = [items, *(_repeat_items(bb, t, plan.chunk) for t in crossing)]
        scores = forward.scores(bb, feeds, plan.chunk)
        if prob:  # in float64, as the engine: probabilities over locations differ by little
            wide = bb.op("Cast", [scores], to=TensorProto.DOUBLE)
            scores = bb.op("Cast", [bb.op("Softmax", [wide], axis=-1)], to=TensorProto.FLOAT)
        return bb.pick(scores, targets, plan.chunk)

    return body


def _ablation_cam(b, forward, acts, crossing, logits, targets, k, chunk) -> str:
    plan = _Plan(k, chunk)
    keep = (1 - np.eye(k, dtype=np.float32))[:, :, None, None]
    table = b.const(plan.padded(keep), np.float32, "ablations")
    ablated = _loop_scores(
        b, plan, _tail_body(plan, forward, acts, crossing, targets, table, False)
    )
    y = b.reshape(
        b.op("GatherElements", [logits, b.reshape(targets, [[-1, 1]])], axis=1), [[-1, 1]]
    )
    safe = b.op("Greater", [b.op("Abs", [y]), b.const(SAFE_SCORE, np.float32)])
    one, zero = b.const(1.0, np.float32), b.const(0.0, np.float32)
    ratio = b.op("Div", [b.op("Sub", [y, ablated]), b.op("Where", [safe, y, one])])
    unchanged = b.op(
        "Equal", [b.reduce("ReduceMax", b.op("Abs", [acts]), [2, 3], keepdims=0), zero]
    )
    weights = b.op("Where", [b.op("And", [safe, b.op("Not", [unchanged])]), ratio, zero], "weights")
    return _weighted_relu(b, acts, weights)


def _recipro_cam(b, forward, acts, crossing, targets, spatial, chunk) -> str:
    n_locations = int(np.prod(spatial))
    plan = _Plan(n_locations, chunk)
    one_hot = np.eye(n_locations, dtype=np.float32).reshape(n_locations, 1, *spatial)
    table = b.const(plan.padded(one_hot), np.float32, "locations")
    scores = _loop_scores(b, plan, _tail_body(plan, forward, acts, crossing, targets, table, True))
    raw = b.reshape(scores, [[-1, 1, *spatial]])
    return b.minmax(raw, [2, 3], MAP_EPS)
