"""Fold inference-mode BatchNormalization into the Conv or Gemm before it (zennit
`MergeBatchNorm`), so that LRP sees one linear layer: w' = w s, b' = (b - mean) s + beta with
s = gamma / sqrt(var + eps) per output channel. A BatchNormalization that cannot be folded
(no Conv/Gemm with constant weights right before it, or that layer's output also used elsewhere)
stays and passes relevance through.

Exporters that write the bias and BatchNorm as elementwise ops (Keras: Conv, Transpose, Cast,
Add bias, Sub mean, Mul scale, Add beta; Dense as MatMul + Add) get the same treatment from
`fold_affine_chains`: a run of per-channel Add/Sub/Mul/Div by constants after a Conv, Gemm or
2-D MatMul, possibly through Transpose and float Casts, is merged into that layer's weights and
bias (the MatMul becoming a Gemm), so the model's LRP does not depend on how its exporter
spelled the layer.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxcam.engine.graph import ModelInfo, attributes


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


def _out_axis(layer: onnx.NodeProto) -> int | None:
    """The axis of the layer's weight that indexes output channels (None: not foldable)."""
    if layer.op_type == "Conv":
        return 0  # (C_out, C_in / group, *k), grouped or not
    if layer.op_type == "Gemm" and not attributes(layer).get("transA", 0):
        return 0 if attributes(layer).get("transB", 0) else 1
    return None


def fold_batch_norms(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of the model with every foldable BatchNormalization merged; and how many were."""
    model = copy.deepcopy(model)
    g = model.graph
    values = {t.name: t for t in g.initializer}
    producers = {out: node for node in g.node for out in node.output}
    uses = Counter(name for node in g.node for name in node.input)
    uses.update(o.name for o in g.output)
    removed, folded = [], 0
    for bn in g.node:
        if bn.op_type != "BatchNormalization" or attributes(bn).get("training_mode", 0):
            continue
        layer = producers.get(bn.input[0])
        stats = [values.get(name) for name in bn.input[1:5]]
        if layer is None or uses[bn.input[0]] != 1 or any(s is None for s in stats):
            continue
        axis = _out_axis(layer)
        if axis is None or layer.input[1] not in values or len(bn.output) != 1:
            continue
        scale, shift, mean, var = (numpy_helper.to_array(s).astype(np.float64) for s in stats)
        s = scale / np.sqrt(var + attributes(bn).get("epsilon", 1e-5))
        w = numpy_helper.to_array(values[layer.input[1]])
        shape = [1] * w.ndim
        shape[axis] = -1
        has_bias = len(layer.input) > 2 and layer.input[2]
        b = numpy_helper.to_array(values[layer.input[2]]) if has_bias else np.zeros(len(s))
        if has_bias and layer.input[2] not in values:
            continue
        if layer.op_type == "Gemm":
            b = np.broadcast_to(b * attributes(layer).get("beta", 1.0), s.shape)
            _set_attr(layer, "beta", 1.0)
        w_name, b_name = f"{layer.input[1]}__bn_folded", f"{bn.output[0]}__bn_bias"
        g.initializer.extend(
            [
                numpy_helper.from_array((w * s.reshape(shape)).astype(w.dtype), w_name),
                numpy_helper.from_array(((b - mean) * s + shift).astype(w.dtype), b_name),
            ]
        )
        del layer.input[1:]
        layer.input.extend([w_name, b_name])
        layer.output[0] = bn.output[0]
        removed.append(bn)
        folded += 1
    for bn in removed:
        g.node.remove(bn)
    _drop_unused_initializers(g)
    return model, folded


def _channel_vector(value: np.ndarray, rank: int, axis: int, channels: int) -> np.ndarray | None:
    """`value` as one number per channel along `axis` of a rank-`rank` tensor, or None when it
    broadcasts any other way."""
    if value.size == 1:
        return np.full(channels, float(value.reshape(-1)[0]))
    if value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    if shape[axis] != channels or any(n != 1 for i, n in enumerate(shape) if i != axis):
        return None
    return value.reshape(-1).astype(np.float64)


def _affine_step(node, tensor, values, rank, axis, channels):
    """(scale, shift) of y -> y * scale + shift for one elementwise node reading `tensor` and a
    per-channel constant; None if the node is not such a step."""
    if node.op_type not in ("Add", "Sub", "Mul", "Div") or len(node.input) != 2:
        return None
    position = list(node.input).index(tensor)
    other = node.input[1 - position]
    if other not in values or (node.op_type in ("Sub", "Div") and position != 0):
        return None
    vector = _channel_vector(numpy_helper.to_array(values[other]), rank, axis, channels)
    if vector is None:
        return None
    ones, zeros = np.ones(channels), np.zeros(channels)
    return {
        "Add": (ones, vector),
        "Sub": (ones, -vector),
        "Mul": (vector, zeros),
        "Div": (1 / vector, zeros),
    }[node.op_type]


def _is_dense_matmul(layer: onnx.NodeProto, values: dict, ranks: dict[str, int]) -> bool:
    """A MatMul of a 2-D activation by a constant (in, out) matrix: a Dense layer without its
    bias, which becomes a Gemm when a bias is folded into it."""
    return (
        layer.op_type == "MatMul"
        and layer.input[1] in values
        and len(values[layer.input[1]].dims) == 2
        and ranks.get(layer.input[0]) == 2
    )


def fold_affine_chains(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of the model with per-channel elementwise constants after Conv/Gemm layers merged
    into them (see the module docstring); and how many elementwise nodes were removed."""
    model = copy.deepcopy(model)
    g = model.graph
    values = {t.name: t for t in g.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producers = {out: node for node in g.node for out in node.output}
    outputs = {o.name for o in g.output}
    ranks = {
        name: len(spec.shape)
        for name, spec in ModelInfo(model).specs.items()
        if spec.shape is not None
    }
    removed: list[onnx.NodeProto] = []
    for layer in list(g.node):
        dense = _is_dense_matmul(layer, values, ranks)
        axis = 1 if dense else _out_axis(layer)
        has_bias = len(layer.input) > 2 and bool(layer.input[2])
        if (
            axis is None
            or layer.input[1] not in values
            or (has_bias and layer.input[2] not in values)
        ):
            continue
        w = numpy_helper.to_array(values[layer.input[1]])
        channels = w.shape[axis]
        rank = w.ndim if layer.op_type == "Conv" else 2
        channel_axis, scale, shift = 1, np.ones(channels), np.zeros(channels)
        tensor, chain = layer.output[0], []
        while tensor not in outputs and len(consumers.get(tensor, [])) == 1:
            node = consumers[tensor][0]
            if node.op_type == "Transpose":
                perm = list(attributes(node).get("perm", list(range(rank))[::-1]))
                channel_axis = perm.index(channel_axis)
            elif node.op_type == "Cast" and attributes(node).get("to", 0) == TensorProto.FLOAT:
                pass
            else:
                step = _affine_step(node, tensor, values, rank, channel_axis, channels)
                if step is None:
                    break
                scale, shift = scale * step[0], shift * step[0] + step[1]
                chain.append((node, list(node.input).index(tensor)))
            tensor = node.output[0]
        if not chain:
            continue
        b = numpy_helper.to_array(values[layer.input[2]]) if has_bias else np.zeros(channels)
        if layer.op_type == "Gemm":
            b = np.broadcast_to(b * attributes(layer).get("beta", 1.0), (channels,))
            _set_attr(layer, "beta", 1.0)
        shape = [1] * w.ndim
        shape[axis] = -1
        w_name, b_name = f"{layer.input[1]}__affine_folded", f"{layer.output[0]}__affine_bias"
        g.initializer.extend(
            [
                numpy_helper.from_array((w * scale.reshape(shape)).astype(w.dtype), w_name),
                numpy_helper.from_array((b * scale + shift).astype(w.dtype), b_name),
            ]
        )
        del layer.input[1:]
        layer.input.extend([w_name, b_name])
        if dense:  # MatMul (N, in) x (in, out) + bias is Gemm with transB = 0
            layer.op_type = "Gemm"
        for node, position in chain:
            _bypass(node, node.input[position], consumers, producers, outputs)
            removed.append(node)
    for node in removed:
        g.node.remove(node)
    _drop_unused_initializers(g)
    return model, len(removed)


def _bypass(node, data: str, consumers: dict, producers: dict, outputs: set[str]) -> None:
    """Take `node` out of the data path: its one consumer reads `data` instead, or, where it
    wrote a graph output (only the last node of a chain can), `data`'s producer writes that
    output itself."""
    out = node.output[0]
    if out in outputs:
        producer = producers[data]
        producer.output[list(producer.output).index(data)] = out
        producers[out] = producer
        return
    (reader,) = consumers[out]
    for i, name in enumerate(reader.input):
        if name == out:
            reader.input[i] = data
    consumers[data] = [reader]


def _drop_unused_initializers(g: onnx.GraphProto) -> None:
    """Remove the initializers no node reads any more (the constants that were folded)."""
    used = {name for node in g.node for name in node.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)


def fold_linear_layers(
    model: onnx.ModelProto, outputs: Sequence[str] | None = None
) -> onnx.ModelProto:
    """Both folds: BatchNormalization nodes, then elementwise per-channel constants. With
    `outputs`, the model keeps only those graph outputs first, so that a layer exposed for
    another method (a Conv output before its BatchNorm) does not block its fold."""
    if outputs is not None:
        model = copy.deepcopy(model)
        kept = [value for value in model.graph.output if value.name in outputs]
        del model.graph.output[:]
        model.graph.output.extend(kept)
    folded, _ = fold_batch_norms(model)
    return fold_affine_chains(folded)[0]
