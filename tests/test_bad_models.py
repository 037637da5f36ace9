"""Models that are broken or hostile: each ends in one clear ModelError (or works), never in a
traceback, a wrong answer or a read outside the model's folder."""

from __future__ import annotations

import os
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcam import Explainer
from onnxcam.engine import checks, graph
from onnxcam.errors import ModelError


def conv_model(weights_name: str = "w") -> onnx.ModelProto:
    """x (N, 2, 6, 6) -> Conv(4 filters) -> ReLU -> GAP -> Flatten -> Gemm (3 classes)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), weights_name),
        numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", weights_name], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["a"]),
        helper.make_node("GlobalAveragePool", ["a"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1),
    ]
    g = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def save_external(folder, location="weights.bin"):
    """The model saved with its weights in one external file; returns the .onnx path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.onnx"
    onnx.save_model(
        conv_model(), path, save_as_external_data=True, location=location, size_threshold=0
    )
    return path


def set_location(path, location: str) -> None:
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


X = np.random.default_rng(1).standard_normal((2, 2, 6, 6)).astype(np.float32)


def test_external_weights_in_the_folder_are_read(tmp_path):
    path = save_external(tmp_path / "model")
    got = Explainer(path, progress=False).explain(X, method="grad-cam").logits
    want = Explainer(conv_model(), progress=False).explain(X, method="grad-cam").logits
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("absolute", "expected a file name inside the model's folder"),
        ("parent", "expected a file name inside the model's folder"),
        ("missing", "cannot open"),
        ("symlink", "a symbolic link"),
        ("hardlink", "with 2 links"),
        ("linked_folder", "is a link or not a folder"),
        ("truncated", "expected .* bytes"),
        ("offset", "expected .* bytes"),
    ],
)
def test_external_data_outside_or_broken_is_refused(tmp_path, make, message):
    path = save_external(tmp_path / "model")
    weights = tmp_path / "model" / "weights.bin"
    outside = tmp_path / "secret.bin"
    shutil.copy(weights, outside)
    if make == "absolute":
        set_location(path, str(outside))
    elif make == "parent":
        set_location(path, "../secret.bin")
    elif make == "missing":
        weights.unlink()
    elif make == "symlink":
        weights.unlink()
        weights.symlink_to(outside)
    elif make == "hardlink":
        weights.unlink()
        os.link(outside, weights)
    elif make == "linked_folder":
        (tmp_path / "elsewhere").mkdir()
        shutil.copy(outside, tmp_path / "elsewhere" / "weights.bin")
        (tmp_path / "model" / "sub").symlink_to(tmp_path / "elsewhere")
        set_location(path, "sub/weights.bin")
    elif make == "truncated":
        weights.write_bytes(weights.read_bytes()[:40])
    elif make == "offset":
        model = onnx.load(path, load_external_data=False)
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "offset":
                entry.value = str(10**9)
        path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match=message):
        graph.load(path)


def test_external_data_given_as_bytes_is_refused(tmp_path):
    path = save_external(tmp_path / "model")
    with pytest.raises(ModelError, match=r"load it from its \.onnx path"):
        graph.load(path.read_bytes())


def with_output_shape(model: onnx.ModelProto, nodes, outputs) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "m", list(model.graph.input), outputs, list(model.graph.initializer)
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_a_dense_output_is_refused_not_read_as_classes():
    base = conv_model()
    nodes = [helper.make_node("Conv", ["x", "w"], ["logits"], pads=[1, 1, 1, 1])]
    declared = with_output_shape(
        base, nodes, [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4, 6, 6])]
    )
    with pytest.raises(ModelError, match=r"a dense map .*not class scores"):
        Explainer(declared, layer="x").explain(np.zeros((1, 2, 6, 6), np.float32), "grad-cam")
    # where shape inference cannot tell, the first forward pass does
    with pytest.raises(ModelError, match=r"shape \(N, 4, 6, 6\): a dense map"):
        checks.class_scores_2d(np.zeros((2, 4, 6, 6), np.float32), "logits")
    assert checks.class_scores_2d(np.zeros((2, 4, 1, 1)), "logits").shape == (2, 4)


def test_a_scalar_output_per_input_is_refused():
    base = conv_model()
    nodes = [
        *base.graph.node,
        helper.make_node("ReduceSum", ["logits", "one"], ["total"], keepdims=0),
    ]
    g = helper.make_graph(
        nodes,
        "m",
        list(base.graph.input),
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N"])],
        [*base.graph.initializer, numpy_helper.from_array(np.array([1], np.int64), "one")],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(ModelError, match=r"expected class scores \(N, K\)"):
        Explainer(model)


def test_an_integer_input_is_refused():
    model = conv_model()
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    with pytest.raises(ModelError, match="is INT64: expected a float input"):
        Explainer(model)


def test_non_finite_scores_are_refused_naming_the_inputs():
    model = conv_model()
    fc = model.graph.initializer[1]
    weights = numpy_helper.to_array(fc).copy()
    weights[0, 0] = np.nan
    fc.CopyFrom(numpy_helper.from_array(weights, "fc"))
    with pytest.raises(ModelError, match=r"class scores are NaN or Inf for inputs \[0, 1\]"):
        Explainer(model, progress=False).explain(X)


def test_activations_that_overflow_are_refused():
    x = np.full((1, 2, 6, 6), 1e38, np.float32)
    with pytest.raises(ModelError, match="NaN or Inf for inputs"):
        Explainer(conv_model(), progress=False).explain(x, method="eigen-cam")


def test_absurd_declared_compute_is_refused_before_it_runs():
    model = conv_model()
    conv = model.graph.node[0]
    for attribute in conv.attribute:
        if attribute.name == "pads":
            attribute.ints[:] = [100_000] * 4
    with pytest.raises(ModelError, match=r"computes tensor 'c' of shape .* expected at most"):
        Explainer(model, progress=False).explain(X)


def test_free_size_with_a_fixed_head_names_the_size_it_runs_at():
    """(N, 2, H, W) -> Conv(stride 2) -> Flatten -> Gemm sized for 8x8 inputs."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((5, 3 * 4 * 4)).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1),
    ]
    g = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    explainer = Explainer(model, layer="c", progress=False)
    assert explainer.explain(np.zeros((1, 2, 8, 8), np.float32), "grad-cam").maps.shape == (1, 8, 8)
    with pytest.raises(ModelError, match=r"Gemm node .*: it runs at 8x8 \(got 12x12"):
        explainer.explain(np.zeros((1, 2, 12, 12), np.float32), "grad-cam")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "onnxcam.preprocess",
            '{"mean": [0.5], "std": [0.5], "crop_fraction": 0}',
            "crop_fraction",
        ),
        ("onnxcam.preprocess", '{"mean": [0.5], "std": [0], "crop_fraction": 1}', "std must be"),
        ("onnxcam.preprocess", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("onnxcam.preprocess", '"imagenet"', "expected an object"),
        ("onnxcam.layout", "sideways", "onnxcam.layout' must be one of"),
    ],
)
def test_hostile_metadata_is_one_error(key, value, message):
    model = conv_model()
    model.metadata_props.add(key=key, value=value)
    with pytest.raises(ModelError, match=message):
        Explainer(model).input_format("auto")


def test_a_layer_map_that_is_not_a_map_is_ignored_with_a_warning():
    model = conv_model()
    model.metadata_props.add(key="onnxcam.layers", value='["c", "a"]')
    with pytest.warns(RuntimeWarning, match="not a map of module paths"):
        explainer = Explainer(model, layer="a", progress=False)
    assert explainer.layer == "a"


def test_bad_name_scopes_are_ignored():
    model = conv_model()
    for text in ("{'a': 1}", "[1, 2]", "(" * 5000 + ")" * 5000, "not python"):
        node = model.graph.node[1]
        del node.metadata_props[:]
        node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=text)
        assert [info.scope for info in graph.list_layers(model)] == ["", ""]


def test_channels_last_metadata_on_a_channels_first_graph_is_refused():
    model = conv_model()
    model.metadata_props.add(key="onnxcam.layout", value="channels_last")
    with pytest.raises(ModelError, match="said to be channels_last, but its input feeds Conv"):
        Explainer(model)


def float16_model(softmax: bool = False) -> onnx.ModelProto:
    model = conv_model()
    for tensor in model.graph.initializer:
        tensor.CopyFrom(
            numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name)
        )
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    maxpool = helper.make_node("MaxPool", ["a"], ["m"], kernel_shape=[2, 2], strides=[2, 2])
    model.graph.node.insert(2, maxpool)
    model.graph.node[3].input[0] = "m"
    if softmax:
        model.graph.node[-1].output[0] = "z"
        model.graph.node.append(helper.make_node("Softmax", ["z"], ["logits"], axis=1))
    return model


@pytest.mark.parametrize("method", ["grad-cam", "lrp", "salience-cam", "score-cam", "sr-map"])
def test_float16_models_work_with_every_kind_of_method(method):
    model = float16_model()
    x = X.astype(np.float16)
    result = Explainer(model, layer="a", progress=False).explain(x, method)
    reference = Explainer(conv_model_with_pool(), layer="a", progress=False).explain(X, method)
    assert result.maps.dtype == np.float32 and result.maps.shape == (2, 6, 6)
    assert np.isfinite(result.maps).all() and result.maps.min() >= 0 and result.maps.max() <= 1
    assert (result.targets == reference.targets).all()
    if method != "sr-map":  # the saliency step amplifies float16 noise in the relevance
        assert np.abs(result.maps - reference.maps).max() < 0.05


def conv_model_with_pool() -> onnx.ModelProto:
    model = conv_model()
    maxpool = helper.make_node("MaxPool", ["a"], ["m"], kernel_shape=[2, 2], strides=[2, 2])
    model.graph.node.insert(2, maxpool)
    model.graph.node[3].input[0] = "m"
    return model


def test_ablation_through_the_whole_model_of_a_softmax_classifier():
    model = float16_model(softmax=True)
    result = Explainer(model, layer="a", progress=False).explain(
        X.astype(np.float16), "ablation-cam", mode="full"
    )
    tail = Explainer(model, layer="a", progress=False).explain(X.astype(np.float16), "ablation-cam")
    np.testing.assert_allclose(result.weights, tail.weights, atol=1e-2)


def test_ort_failures_name_the_op_and_node():
    model = conv_model()
    model.graph.initializer[1].CopyFrom(
        numpy_helper.from_array(np.ones((3, 5), np.float32), "fc")
    )  # the Gemm's weight no longer fits the 4 channels
    with pytest.raises(ModelError, match=r"ONNX Runtime cannot load the model: Gemm node"):
        Explainer(model, progress=False).explain(X)
