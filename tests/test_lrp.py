"""LRP on ONNX graphs: every composite equals a direct NumPy LRP (lrp_reference.py) on small
dense and conv nets, bias-free models conserve relevance, BatchNorm folding changes nothing."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
from lrp_reference import conv_forward, conv_relevance, dense_relevance
from onnx import TensorProto, helper, numpy_helper

from onnxcam import Explainer
from onnxcam.engine.backward import BackwardError, build, grad_name, seed_name
from onnxcam.engine.backward.relevance import (
    Composite,
    fold_affine_chains,
    fold_batch_norms,
    linear,
    rule_set,
)
from onnxcam.engine.ort import onnxruntime as ort

LOW, HIGH = np.array([-2.0, -1.5]), np.array([1.0, 2.5])


def make_model(nodes, inits, shape, classes=3) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def conv_net(seed=0, bias=True):
    rng = np.random.default_rng(seed)
    p = {
        "w1": rng.normal(size=(3, 2, 3, 3)),
        "b1": rng.normal(size=3) * 0.3 * bias,
        "w2": rng.normal(size=(4, 3, 3, 3)),
        "b2": rng.normal(size=4) * 0.3 * bias,
        "w3": rng.normal(size=(3, 36)),
        "b3": rng.normal(size=3) * 0.3 * bias,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["a1"]),
        helper.make_node("Conv", ["a1", "w2", "b2"], ["c2"], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["a2"]),
        helper.make_node("Flatten", ["a2"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], transB=1),
    ]
    return make_model(nodes, p, (2, 7, 7)), p


def dense_net(seed=0):
    rng = np.random.default_rng(seed)
    p = {
        "w1": rng.normal(size=(5, 6)),
        "b1": rng.normal(size=5) * 0.3,
        "w2": rng.normal(size=(5, 3)),  # transB=0: (in, out)
        "b2": rng.normal(size=3) * 0.3,
    }
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"]),
    ]
    return make_model(nodes, p, (6,)), p


# composite -> (first, other conv, dense) reference rules as (rule, options)
EPS = {"eps": 1e-6}
REFERENCE = {
    "lrp-0": [("epsilon", {})] * 3,
    "epsilon": [("epsilon", EPS)] * 3,
    "epsilon-plus": [("zplus", EPS), ("zplus", EPS), ("epsilon", EPS)],
    "epsilon-plus-flat": [("flat", EPS), ("zplus", EPS), ("epsilon", EPS)],
    "epsilon-alpha2-beta1": [("alpha-beta", {"alpha": 2, "beta": 1, **EPS})] * 2
    + [("epsilon", EPS)],
    "epsilon-gamma-box": [
        ("zbox", {"low": LOW, "high": HIGH, **EPS}),
        ("gamma", {"gamma": 0.25, **EPS}),
        ("epsilon", EPS),
    ],
    "sr-official": [("epsilon", {"signed": False})] * 2 + [("x-w-plus", {})],
}


def seed_for(logits):
    target = logits.argmax(1)
    r = np.zeros_like(logits)
    r[np.arange(len(r)), target] = logits[np.arange(len(r)), target]
    return r


def run_relevance(model, rules, x):
    built = build(model, rules, ["logits"], ["x"], ["logits"])
    session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"x": x, seed_name("logits"): np.zeros((len(x), 3), "f")})[0]
    feeds = {"x": x, seed_name("logits"): seed_for(logits)}
    return session.run([grad_name("x")], feeds)[0], logits


def relu(z):
    return np.maximum(z, 0)


def conv_reference(p, x, rules, activation=relu):
    x = x.astype(np.float64)
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    c1 = conv_forward(x, p["w1"], p["b1"], 1, 1)
    a1 = activation(c1)
    c2 = conv_forward(a1, p["w2"], p["b2"], 2, 0)
    f = activation(c2).reshape(len(x), -1)
    logits = f @ p["w3"].T + p["b3"]
    (r1, o1), (r2, o2), (r3, o3) = rules
    r = dense_relevance(f, p["w3"], p["b3"], seed_for(logits), r3, **o3).reshape(c2.shape)
    r = conv_relevance(a1, p["w2"], p["b2"], r, r2, 2, 0, **o2)
    return conv_relevance(x, p["w1"], p["b1"], r, r1, 1, 1, **o1)


def relative_error(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def bounded_input(rng, n=2):
    return rng.uniform(LOW[None, :, None, None], HIGH[None, :, None, None], (n, 2, 7, 7))


@pytest.mark.parametrize("composite", list(REFERENCE))
def test_conv_net_equals_numpy_lrp(composite):
    model, p = conv_net()
    x = bounded_input(np.random.default_rng(1)).astype(np.float32)
    rules = Composite(composite, low=tuple(LOW), high=tuple(HIGH)).rules(model)
    got, _ = run_relevance(model, rules, x)
    want = conv_reference(p, x, REFERENCE[composite])
    assert relative_error(got, want) < 1e-4


@pytest.mark.parametrize("composite", list(REFERENCE))
def test_dense_net_equals_numpy_lrp(composite):
    model, p = dense_net()
    x = np.random.default_rng(2).uniform(-2.0, 1.0, (4, 6)).astype(np.float32)
    low, high = np.full((4, 6), -2.0), np.full((4, 6), 1.0)
    rules = Composite(composite, low=-2.0, high=1.0).rules(model)
    got, _ = run_relevance(model, rules, x)
    h = x.astype(np.float64) @ p["w1"].T + p["b1"]
    a = np.maximum(h, 0)
    logits = a @ p["w2"] + p["b2"]
    first, _, (rule, options) = REFERENCE[composite]
    r = dense_relevance(a, p["w2"].T, p["b2"], seed_for(logits), rule, **options)
    if composite in ("epsilon-plus-flat", "epsilon-gamma-box"):
        rule, options = first
        options = {**options, "low": low, "high": high}
    want = dense_relevance(x.astype(np.float64), p["w1"], p["b1"], r, rule, **options)
    assert relative_error(got, want) < 1e-4


def test_w_square_rule_equals_numpy_lrp():
    model, p = conv_net()
    x = bounded_input(np.random.default_rng(3)).astype(np.float32)
    eps = linear.epsilon_rule(1e-9)
    rules = rule_set("w2 first", model, linear.w_square_rule(), eps, eps)
    got, _ = run_relevance(model, rules, x)
    want = conv_reference(p, x, [("w2", EPS), ("epsilon", {}), ("epsilon", {})])
    assert relative_error(got, want) < 1e-4


def pooled_residual_net(seed=0):
    """Bias-free: Conv-ReLU-MaxPool, Conv-ReLU + skip (residual Add), AveragePool, GAP, Gemm."""
    rng = np.random.default_rng(seed)
    p = {
        "w1": rng.normal(size=(4, 3, 3, 3)),
        "w2": rng.normal(size=(4, 4, 3, 3)) * 0.5,
        "w3": rng.normal(size=(3, 4)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["a1"]),
        helper.make_node("MaxPool", ["a1"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["m", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["a2"]),
        helper.make_node("Add", ["a2", "m"], ["s"]),
        helper.make_node("AveragePool", ["s"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["ap"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3"], ["logits"], transB=1),
    ]
    return make_model(nodes, p, (3, 8, 8))


@pytest.mark.parametrize("composite", ["lrp-0", "epsilon-plus", "sr-official"])
def test_bias_free_relevance_sums_to_the_logit(composite):
    explainer = Explainer(pooled_residual_net(), progress=False)
    x = np.random.default_rng(4).uniform(0, 1, (3, 3, 8, 8)).astype(np.float32)
    result = explainer.explain(x, method="lrp", composite=composite)
    logit = result.logits[np.arange(3), result.targets]
    total = result.relevance.reshape(3, -1).sum(axis=1, dtype=np.float64)
    assert np.abs(total - logit).max() <= 1e-4 * np.abs(logit).max()
    np.testing.assert_allclose(result.raw, result.relevance.sum(axis=1), rtol=1e-6)
    assert result.maps.shape == (3, 8, 8)
    assert result.maps.max() == pytest.approx(1.0)
    assert result.maps.min() >= 0.0


def conv_bn_net(seed=0):
    rng = np.random.default_rng(seed)
    p = {
        "w1": rng.normal(size=(3, 2, 3, 3)),
        "b1": rng.normal(size=3),
        "scale": rng.uniform(0.5, 1.5, 3),
        "shift": rng.normal(size=3),
        "mean": rng.normal(size=3),
        "var": rng.uniform(0.5, 1.5, 3),
        "w3": rng.normal(size=(3, 147)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c1", "scale", "shift", "mean", "var"], ["bn"], epsilon=1e-3
        ),
        helper.make_node("Relu", ["bn"], ["a1"]),
        helper.make_node("Flatten", ["a1"], ["f"]),
        helper.make_node("Gemm", ["f", "w3"], ["logits"], transB=1),
    ]
    return make_model(nodes, p, (2, 7, 7)), p


def test_batch_norm_folding_equals_the_unfolded_model():
    model, p = conv_bn_net()
    folded, count = fold_batch_norms(model)
    assert count == 1
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Relu", "Flatten", "Gemm"]
    x = np.random.default_rng(5).normal(size=(2, 2, 7, 7)).astype(np.float32)
    outputs = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )[0]
        for m in (model, folded)
    ]
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    # LRP of the BN model (folded by the method) = NumPy LRP with hand-folded weights
    s = p["scale"] / np.sqrt(p["var"] + 1e-3)
    w1 = p["w1"] * s[:, None, None, None]
    b1 = (p["b1"] - p["mean"]) * s + p["shift"]
    result = Explainer(model, progress=False).explain(x, method="lrp", composite="epsilon")
    c1 = np.maximum(conv_forward(x.astype(np.float64), w1, b1, 1, 1), 0)
    f = c1.reshape(2, -1)
    r = dense_relevance(f, p["w3"], None, seed_for(f @ p["w3"].T), "epsilon", eps=1e-6)
    want = conv_relevance(
        x.astype(np.float64), w1, b1, r.reshape(c1.shape), "epsilon", 1, 1, eps=1e-6
    )
    assert relative_error(result.relevance, want) < 1e-4


def keras_style_net(seed=0):
    """conv_bn_net as Keras exports it: a bias-free Conv, then (channels last) the bias and the
    BatchNorm as Add/Sub/Mul/Add constants between Transposes and float Casts."""
    _, p = conv_bn_net(seed)
    s = p["scale"] / np.sqrt(p["var"] + 1e-3)
    per_channel = {"bias": p["b1"], "mean": p["mean"], "s": s, "beta": p["shift"]}
    inits = {
        "w1": p["w1"],
        "w3": p["w3"],
        **{k: v.reshape(1, 1, 1, 3) for k, v in per_channel.items()},
    }
    inits["half"] = np.array(0.5)  # a scalar: per channel too
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["c1"], ["t1"], perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["t1"], ["k1"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["bias", "k1"], ["a"]),
        helper.make_node("Sub", ["a", "mean"], ["b"]),
        helper.make_node("Mul", ["b", "s"], ["c"]),
        helper.make_node("Add", ["c", "beta"], ["d"]),
        helper.make_node("Div", ["d", "half"], ["e"]),
        helper.make_node("Transpose", ["e"], ["t2"], perm=[0, 3, 1, 2]),
        helper.make_node("Relu", ["t2"], ["a1"]),
        helper.make_node("Flatten", ["a1"], ["f"]),
        helper.make_node("Gemm", ["f", "w3"], ["logits"], transB=1),
    ]
    return make_model(nodes, inits, (2, 7, 7)), p


def test_elementwise_bias_and_batch_norm_fold_like_a_batch_norm_node():
    keras, _ = keras_style_net()
    folded, removed = fold_affine_chains(keras)
    assert removed == 5
    ops = [n.op_type for n in folded.graph.node]
    assert ops == ["Conv", "Transpose", "Cast", "Transpose", "Relu", "Flatten", "Gemm"]
    x = np.random.default_rng(5).normal(size=(2, 2, 7, 7)).astype(np.float32)
    run = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )[0]
        for m in (keras, folded)
    ]
    np.testing.assert_allclose(run[1], run[0], rtol=1e-5, atol=1e-5)
    # the Div by 0.5 doubles the BN net's layer, and LRP is homogeneous: ...
    bn_model, _ = conv_bn_net()
    for composite in ("epsilon", "epsilon-plus", "sr-official"):
        got = Explainer(keras, progress=False).explain(x, method="lrp", composite=composite)
        plain = Explainer(bn_model, progress=False).explain(x, method="lrp", composite=composite)
        # ... has the same relevance up to the factor 2 in the logits
        logit_ratio = got.metadata["relevance_sum"] / plain.metadata["relevance_sum"]
        assert (
            relative_error(got.relevance, plain.relevance * logit_ratio[:, None, None, None]) < 1e-4
        )


@pytest.mark.parametrize("composite", ["epsilon", "epsilon-plus", "sr-official"])
def test_dense_layers_written_as_matmul_and_add_fold_into_gemm(composite):
    gemm, p = dense_net()
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("MatMul", ["a", "w2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["logits"]),
    ]
    folded, removed = fold_affine_chains(make_model(nodes, p, (6,)))
    assert removed == 1  # the Add wrote the graph output: the MatMul, now a Gemm, writes it
    assert [(n.op_type, n.output[0]) for n in folded.graph.node][-1] == ("Gemm", "logits")
    assert {t.name for t in folded.graph.initializer} == {"w1", "b1"} | {
        n.input[i] for n in folded.graph.node[-1:] for i in (1, 2)
    }  # the folded constants are gone
    x = np.random.default_rng(7).normal(size=(4, 6)).astype(np.float32)
    rules = Composite(composite).rules(gemm)
    want, _ = run_relevance(gemm, rules, x)
    got, _ = run_relevance(folded, Composite(composite).rules(folded), x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_constants_that_are_not_per_channel_are_left_alone():
    keras, _ = keras_style_net()
    mean = next(t for t in keras.graph.initializer if t.name == "mean")
    full = np.random.default_rng(0).normal(size=(1, 7, 7, 3)).astype(np.float32)
    mean.CopyFrom(numpy_helper.from_array(full, "mean"))  # (1, H, W, C): varies over space
    folded, removed = fold_affine_chains(keras)
    assert removed == 1  # only the bias Add before it
    assert [n.op_type for n in folded.graph.node].count("Sub") == 1


def test_bad_composites_and_computed_weights_are_refused():
    with pytest.raises(ValueError, match="unknown LRP composite 'zplus'"):
        Composite("zplus")
    with pytest.raises(ValueError, match="gamma must be a number >= 0"):
        Composite("epsilon-gamma-box", gamma=-1.0)
    with pytest.raises(ValueError, match="alpha - beta must be 1"):
        linear.alpha_beta_rule(2.0, 2.0)
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"]),
        helper.make_node("MatMul", ["x", "xt"], ["logits"]),
    ]
    g = helper.make_graph(
        nodes,
        "gram",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [3, 3])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(BackwardError, match="product of two activations"):
        build(model, Composite("lrp-0").rules(model), ["logits"], ["x"])


def test_explanation_saves_the_relevance(tmp_path):
    explainer = Explainer(pooled_residual_net(), progress=False)
    x = np.random.default_rng(6).uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    result = explainer.explain(x, method="lrp", composite="lrp-0")
    result.save(tmp_path)
    saved = np.load(tmp_path / "0001_relevance.npy")
    np.testing.assert_array_equal(saved, result.relevance[1])


ACTIVATIONS = {
    "Tanh": np.tanh,
    "Sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "Elu": lambda z: np.where(z > 0, z, np.exp(z) - 1),
    "HardSwish": lambda z: z * np.clip(z / 6 + 0.5, 0, 1),
    "Softplus": lambda z: np.log1p(np.exp(z)),
}


@pytest.mark.parametrize("op", list(ACTIVATIONS))
def test_elementwise_activations_pass_relevance_on(op):
    """zennit's Pass on every activation: R goes through unchanged, the activation's values
    weigh the next layer's contributions."""
    model, p = conv_net()
    for node in model.graph.node:
        if node.op_type == "Relu":
            node.op_type = op
    x = bounded_input(np.random.default_rng(8)).astype(np.float32)
    got, _ = run_relevance(model, Composite("epsilon").rules(model), x)
    want = conv_reference(p, x, REFERENCE["epsilon"], ACTIVATIONS[op])
    assert relative_error(got, want) < 1e-4


def test_a_layer_exposed_before_its_batch_norm_still_folds():
    """Explaining at a Conv output that a BatchNorm follows exposes it as a graph output; the
    relevance graph folds the BatchNorm all the same."""
    model, _ = conv_bn_net()
    exposed = copy.deepcopy(model)
    exposed.graph.output.append(
        helper.make_tensor_value_info("c1", TensorProto.FLOAT, ["N", 3, 7, 7])
    )
    x = np.random.default_rng(9).normal(size=(2, 2, 7, 7)).astype(np.float32)
    plain = Explainer(model, progress=False).explain(x, "lrp")
    seen = Explainer(exposed, layer="c1", progress=False).explain(x, "lrp")
    np.testing.assert_allclose(seen.relevance, plain.relevance, rtol=1e-5, atol=1e-6)


def normalising_net(seed=0):
    """(x - mean) / std, a zero Pad, then conv_net's layers without their first layer's pads:
    the z^B bounds of x reach the first Conv through the arithmetic and the padding."""
    model, p = conv_net(seed)
    g = model.graph
    g.node[0].input[0] = "padded"
    del g.node[0].attribute[:]
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array([0.3, -0.2], np.float32).reshape(1, 2, 1, 1), "m"),
            numpy_helper.from_array(np.array([0.5, 2.0], np.float32).reshape(1, 2, 1, 1), "s"),
            numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        ]
    )
    head = [
        helper.make_node("Sub", ["x", "m"], ["centred"]),
        helper.make_node("Div", ["centred", "s"], ["v"]),
        helper.make_node("Pad", ["v", "pads"], ["padded"]),
    ]
    nodes = head + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return model, p


@pytest.mark.parametrize("spread", [1.0, 3.0])
def test_box_bounds_follow_the_input_through_normalisation_and_padding(spread):
    """Bounds given for x become ((low - m) / s, (high - m) / s) at the conv, zero in the
    padding; where x leaves them (spread 3) they widen per element to contain it."""
    model, p = normalising_net()
    rng = np.random.default_rng(10)
    x = (rng.uniform(-1, 1, (2, 2, 7, 7)) * spread).astype(np.float32)
    composite = Composite("epsilon-gamma-box", low=-1.0, high=1.0)
    built = build(model, composite.rules(model), ["logits"], ["v"], ["logits"])
    session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
    zeros = np.zeros((2, 3), np.float32)
    logits = session.run(["logits"], {"x": x, seed_name("logits"): zeros})[0]
    (got,) = session.run([grad_name("v")], {"x": x, seed_name("logits"): seed_for(logits)})
    m, s = np.array([0.3, -0.2]).reshape(1, 2, 1, 1), np.array([0.5, 2.0]).reshape(1, 2, 1, 1)
    v = (x.astype(np.float64) - m) / s
    low, high = np.minimum((-1 - m) / s, v), np.maximum((1 - m) / s, v)
    pp = {k: np.asarray(val, np.float64) for k, val in p.items()}
    c1 = np.maximum(conv_forward(v, pp["w1"], pp["b1"], 1, 1), 0)
    c2 = conv_forward(c1, pp["w2"], pp["b2"], 2, 0)
    f = np.maximum(c2, 0).reshape(2, -1)
    r = dense_relevance(
        f, pp["w3"], pp["b3"], seed_for(f @ pp["w3"].T + pp["b3"]), "epsilon", **EPS
    )
    r = conv_relevance(
        c1, pp["w2"], pp["b2"], r.reshape(c2.shape), "gamma", 2, 0, gamma=0.25, **EPS
    )
    want = conv_relevance(v, pp["w1"], pp["b1"], r, "zbox", 1, 1, low=low, high=high, eps=1e-6)
    assert relative_error(got, want) < 1e-4


def test_box_bounds_default_to_the_stored_preprocessing():
    model, _ = conv_net()
    stored = {"mean": [0.5, 0.25], "std": [0.5, 0.25], "crop_fraction": 0.875}
    helper.set_model_props(model, {"onnxcam.preprocess": json.dumps(stored)})
    x = bounded_input(np.random.default_rng(11)).astype(np.float32)
    explainer = Explainer(model, progress=False)
    default = explainer.explain(x, "lrp", composite="epsilon-gamma-box")
    given = explainer.explain(x, "lrp", composite="epsilon-gamma-box", low=[-1, -1], high=[1, 3])
    np.testing.assert_array_equal(default.relevance, given.relevance)
    other = explainer.explain(x, "lrp", composite="epsilon-gamma-box", low=0, high=1)
    assert relative_error(other.relevance, given.relevance) > 1e-2


def test_attn_lrp_on_a_cnn_is_the_epsilon_composite(resnet_onnx, images):
    """AttnLRP differs from LRP-epsilon only at softmaxes and products of two activations."""
    explainer = Explainer(resnet_onnx, progress=False)
    attn = explainer.explain(images, "lrp", composite="attn-lrp").relevance
    epsilon = explainer.explain(images, "lrp", composite="epsilon").relevance
    np.testing.assert_allclose(attn, epsilon, rtol=1e-5, atol=1e-7)
