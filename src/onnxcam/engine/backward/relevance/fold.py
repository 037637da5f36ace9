"""Fold inference-mode BatchNormalization into the Conv or Gemm before it (zennit
`MergeBatchNorm`), so that LRP sees one linear layer: w' = w s, b' = (b - mean) s + beta with
s = gamma / sqrt(var + eps) per output channel. A BatchNormalization that cannot be folded
(no Conv/Gemm with constant weights right before it, or that layer's output also used elsewhere)
stays and passes relevance through.
"""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _attr(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


def _out_axis(layer: onnx.NodeProto) -> int | None:
    """The axis of the layer's weight that indexes output channels (None: not foldable)."""
    if layer.op_type == "Conv":
        return 0  # (C_out, C_in / group, *k), grouped or not
    if layer.op_type == "Gemm" and not _attr(layer, "transA", 0):
        return 0 if _attr(layer, "transB", 0) else 1
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
        if bn.op_type != "BatchNormalization" or _attr(bn, "training_mode", 0):
            continue
        layer = producers.get(bn.input[0])
        stats = [values.get(name) for name in bn.input[1:5]]
        if layer is None or uses[bn.input[0]] != 1 or any(s is None for s in stats):
            continue
        axis = _out_axis(layer)
        if axis is None or layer.input[1] not in values or len(bn.output) != 1:
            continue
        scale, shift, mean, var = (numpy_helper.to_array(s).astype(np.float64) for s in stats)
        s = scale / np.sqrt(var + _attr(bn, "epsilon", 1e-5))
        w = numpy_helper.to_array(values[layer.input[1]])
        shape = [1] * w.ndim
        shape[axis] = -1
        has_bias = len(layer.input) > 2 and layer.input[2]
        b = numpy_helper.to_array(values[layer.input[2]]) if has_bias else np.zeros(len(s))
        if has_bias and layer.input[2] not in values:
            continue
        if layer.op_type == "Gemm":
            b = np.broadcast_to(b * _attr(layer, "beta", 1.0), s.shape)
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
    return model, folded
