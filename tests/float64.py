"""The engine's own relevance graph run in float64 by ONNX's reference evaluator (ONNX Runtime
has no float64 convolutions): with float32 noise gone, a rule that differs from its reference
shows at once, where in float32 it could hide under the noise."""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator

from onnxcam.engine import backward, graph
from onnxcam.engine.backward.relevance import ABSORBED, Composite, fold_linear_layers


def _double(tensor: onnx.TensorProto) -> onnx.TensorProto:
    value = numpy_helper.to_array(tensor).astype(np.float64)
    return numpy_helper.from_array(value, tensor.name)


def to_float64(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with every float32 initializer, constant, cast and graph input/output in float64."""
    model = copy.deepcopy(model)
    g = model.graph
    for tensor in g.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(_double(tensor))
    for value in [*g.input, *g.output]:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    del g.value_info[:]
    for node in g.node:
        for attribute in node.attribute:
            if attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.DOUBLE
            is_tensor = attribute.type == onnx.AttributeProto.TENSOR
            if is_tensor and attribute.t.data_type == TensorProto.FLOAT:
                attribute.t.CopyFrom(_double(attribute.t))
    return model


def relevance_float64(
    model: onnx.ModelProto, composite: Composite, x: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input relevance, what biases absorbed, the targets' logits) of the engine's relevance
    graph for `composite`, seeded with the targets' logits, computed in float64."""
    source = graph.model_input(model).name
    logits = graph.ModelInfo(model).logits
    folded = fold_linear_layers(model, [logits])
    built = backward.build(
        folded, composite.rules(folded), [logits], [source], [logits], [ABSORBED]
    )
    evaluator = ReferenceEvaluator(to_float64(built))
    x = x.astype(np.float64)
    classes = graph.ModelInfo(model).specs[logits].shape[1]
    seed = backward.seed_name(logits)
    (scores,) = evaluator.run([logits], {source: x, seed: np.zeros((len(x), classes))})
    rows = np.arange(len(x))
    seeded = np.zeros_like(scores)
    seeded[rows, targets] = scores[rows, targets]
    names = [backward.grad_name(source), backward.tally_name(ABSORBED)]
    relevance, absorbed = evaluator.run(names, {source: x, seed: seeded})
    return relevance, absorbed, scores[rows, targets]
