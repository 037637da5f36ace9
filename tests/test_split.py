"""graph.split: the tail after a cut, fed with the tensors that cross it, equals the full model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from toy_models import scoped_tensor

from onnxcam.engine import graph
from onnxcam.engine.runner import open_session
from onnxcam.errors import LayerError


def small_model(nodes, input_shape, output: str, output_shape, ints=None, opset: int = 13):
    """A one-input float graph of `nodes` with int64 initializers `ints` (name: values)."""
    initializers = [
        onnx.numpy_helper.from_array(np.array(v, np.int64), k) for k, v in (ints or {}).items()
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
        initializers,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def tail_of_head(model: onnx.ModelProto, tensor: str, x: np.ndarray) -> tuple[np.ndarray, ...]:
    cut = graph.split(model, tensor)
    logits = graph.logits_tensor(model)
    name = graph.model_input(model).name
    head = open_session(graph.expose(model, [logits, tensor, *cut.crossing]))
    full, *fed = head.run([logits, tensor, *cut.crossing], {name: x})
    (tail,) = open_session(cut.tail).run(
        [logits], dict(zip([tensor, *cut.crossing], fed, strict=True))
    )
    return full, tail, cut.crossing


def test_residual_connection_crossing_the_cut(resnet_onnx):
    model = graph.load(resnet_onnx)
    inside = scoped_tensor(model, "layer3.relu")  # after conv1-bn1, before the residual add
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    full, tail, crossing = tail_of_head(model, inside, x)
    assert len(crossing) == 1  # the down-sampled skip path, computed in the head
    assert np.abs(full - tail).max() <= 1e-5


@pytest.mark.slow
def test_efficientnet_lite0_split_inside_a_residual_block(lite0_onnx):
    model = graph.load(lite0_onnx)
    inside = scoped_tensor(model, "_blocks.14._swish")
    x = np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32)
    full, tail, crossing = tail_of_head(model, inside, x)
    assert crossing  # block 13's output feeds block 14's skip connection
    assert np.abs(full - tail).max() <= 1e-5 * max(1.0, np.abs(full).max())


def test_split_at_the_input_is_the_whole_model(resnet_onnx):
    model = graph.load(resnet_onnx)
    cut = graph.split(model, "input")
    assert cut.crossing == () and len(cut.tail.graph.node) == len(model.graph.node)


def test_tail_recomputes_shape_arithmetic_from_the_cut():
    """Integers the tail reads that come from the input's shape alone are recomputed there
    from the cut tensor's batch and the input's fixed axes."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Reshape", ["a", "shape"], ["b"]),
        helper.make_node("ReduceMean", ["b"], ["logits"], axes=[2, 3], keepdims=0),
    ]
    model = small_model(nodes, ["N", 2, 3, 3], "logits", ["N", 2])
    split = graph.split(model, "a")
    assert split.crossing == ()
    a = np.random.default_rng(0).uniform(0, 1, (4, 2, 3, 3)).astype(np.float32)
    (logits,) = open_session(split.tail).run(None, {"a": a})
    np.testing.assert_allclose(logits, a.mean((2, 3)), rtol=1e-6)


@pytest.mark.slow
def test_yolo_head_tail_recomputes_its_reshapes_and_anchor_grid(nudenet_bytes):
    """Cut inside one of YOLOv8n's class branches at a fixed input size: the other branches
    cross the cut, the head's reshape sizes (shapes of activations before the cut) follow the
    tail's batch, and its anchor grid (ranges over those shapes) is recomputed in the tail;
    the tail on three items equals the detector's output."""
    from test_targets_real import YOLO_LAYER

    model = graph.with_input_size(graph.load(nudenet_bytes), (1, 3, 320, 320))
    x = np.random.default_rng(2).uniform(0, 1, (3, 3, 320, 320)).astype(np.float32)
    full, tail, crossing = tail_of_head(model, YOLO_LAYER, x)
    assert len(crossing) == 3  # the box branch of its scale and the two other scales' outputs
    assert np.abs(full - tail).max() <= 1e-4 * np.abs(full).max()


def test_a_shape_whose_axis_0_is_not_the_batch_is_refused():
    """f = Reshape(a, [-1, 4]) leads with N * 12, not the batch: its shape cannot be read off
    the cut's batch in the tail, so the split says so instead of building a wrong size."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Reshape", ["a", "rows_of_4"], ["f"]),
        helper.make_node("Sigmoid", ["a"], ["c"]),
        helper.make_node("Shape", ["f"], ["s"]),
        helper.make_node("Reshape", ["c", "s"], ["r"]),
        helper.make_node("ReduceSum", ["r"], ["y"], keepdims=0),
    ]
    model = small_model(nodes, ["N", 3, 4, 4], "y", None, {"rows_of_4": [-1, 4]})
    with pytest.raises(LayerError, match=r"the tail reads 's'.*not a float activation"):
        graph.split(model, "c", ["y"])


def test_recomputed_shapes_keep_the_tails_order():
    """A recomputed shape that reads a static node of the tail comes after it: the tail is a
    valid, topologically sorted graph that gives the model's output."""
    nodes = [
        helper.make_node("Identity", ["minus_one"], ["k"]),
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["c"]),
        helper.make_node("Shape", ["a"], ["batch"], end=1),
        helper.make_node("Concat", ["batch", "k"], ["s"], axis=0),
        helper.make_node("Reshape", ["c", "s"], ["r"]),
        helper.make_node("Reshape", ["c", "k"], ["flat"]),
        helper.make_node("ReduceSum", ["r"], ["y1"], keepdims=0),
        helper.make_node("ReduceSum", ["flat"], ["y2"], keepdims=0),
        helper.make_node("Add", ["y1", "y2"], ["y"]),
    ]
    model = small_model(nodes, ["N", 3, 4, 4], "y", [], {"minus_one": [-1]}, opset=15)
    tail = graph.split(model, "c", ["y"]).tail
    produced = set()
    for node in tail.graph.node:
        assert all(
            i in produced or i not in {o for n in tail.graph.node for o in n.output}
            for i in node.input
        )
        produced.update(node.output)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    (got,) = open_session(tail).run(None, {"c": 1 / (1 + np.exp(-np.maximum(x, 0)))})
    (want,) = open_session(model).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_tail_that_reads_integers_of_the_input_values_is_refused():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("ArgMax", ["x"], ["pick"], axis=1, keepdims=1),
        helper.make_node("GatherElements", ["a", "pick"], ["b"], axis=1),
        helper.make_node("ReduceMean", ["b"], ["logits"], axes=[2, 3], keepdims=0),
    ]
    model = small_model(nodes, ["N", 2, 3, 3], "logits", ["N", 1])
    with pytest.raises(LayerError, match="not a float activation"):
        graph.split(model, "a")


def test_output_that_does_not_depend_on_the_cut(resnet_onnx):
    model = graph.load(resnet_onnx)
    with pytest.raises(LayerError, match="does not depend on it"):
        graph.split(model, "layer3", outputs=["layer2"])
