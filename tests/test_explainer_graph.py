"""The exported explainer graph against the engine: same maps (<= 1e-4), targets and logits."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from toy_models import conv_gap_linear

import onnxcam
from onnxcam.engine import graph
from onnxcam.engine.runner import open_session
from onnxcam.errors import LayerError, ModelError
from onnxcam.serving.explainer import METADATA_KEY, build_explainer

METHODS = ("score-cam", "ablation-cam", "recipro-cam")
CASES = [
    *[("resnet_onnx", "auto", 32, m) for m in METHODS],  # layer3: the tail is GAP + Linear
    *[("resnet_onnx", "relu_5", 32, m) for m in METHODS],  # the skip connection crosses the cut
    # VGG's random head is nearly flat: ReciproCAM's probabilities at relu_8 vary by 6e-5 of
    # their value, below float32's resolution of the map, and Ablation-CAM's map at
    # features.29 is all negative (a zero map), so each method takes the layer it resolves.
    ("vgg_onnx", "features.29", 64, "recipro-cam"),
    ("vgg_onnx", "features.29", 64, "score-cam"),
    ("vgg_onnx", "relu_8", 64, "ablation-cam"),  # the tail: two conv blocks, Flatten, an MLP
]


def run_explainer(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = open_session(model)
    return session.run(None, {session.get_inputs()[0].name: x})


@pytest.mark.parametrize(("fixture", "layer", "size", "method"), CASES)
def test_maps_equal_the_engine(request, fixture, layer, size, method):
    path = request.getfixturevalue(fixture)
    x = np.random.default_rng(1).standard_normal((3, 3, size, size)).astype(np.float32)
    # chunk 5 divides neither the channel counts (8, 24) nor the location counts (4, 16)
    explainer = build_explainer(onnx.load(path), method, layer, chunk=5)
    logits, targets, maps = run_explainer(explainer, x)
    expected = onnxcam.Explainer(path, layer=layer, progress=False).explain(x, method)
    assert maps.shape == expected.maps.shape == (3, size, size)
    assert np.array_equal(targets, expected.targets)
    np.testing.assert_allclose(logits, expected.logits, atol=1e-5)
    assert np.abs(maps - expected.maps).max() <= 1e-4
    assert (maps.max(axis=(1, 2)) > 0.9).all()  # real maps, not constant zeros


def test_chunk_sets_the_loop_and_the_graph_uses_standard_ops(resnet_onnx):
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    recipro = build_explainer(onnx.load(resnet_onnx), "recipro-cam", "layer3", chunk=7)
    assert loop_trips(recipro, x) == 5  # 2 images x 4 x 4 locations in blocks of 7
    ablation = build_explainer(onnx.load(resnet_onnx), "ablation-cam", "layer3", chunk=7)
    nonzero = onnxcam.Explainer(resnet_onnx, layer="layer3", progress=False).explain(
        x, "ablation-cam"
    )
    assert loop_trips(ablation, x) == -(-nonzero.metadata["passes_run"] // 7)
    explainer = build_explainer(onnx.load(resnet_onnx), "score-cam", "layer3", chunk=7)
    assert {o.domain for o in explainer.opset_import} <= {"", "ai.onnx"}
    assert [o.name for o in explainer.graph.output] == ["logits", "target", "map"]
    info = {p.key: p.value for p in explainer.metadata_props}[METADATA_KEY]
    assert '"method": "score-cam"' in info and '"layer": "layer3"' in info


def loop_trips(model: onnx.ModelProto, x: np.ndarray) -> int:
    """The trip count the explainer's Loop runs on x (its input exposed as an output)."""
    (loop,) = [n for n in model.graph.node if n.op_type == "Loop"]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(loop.input[0]))
    session = open_session(probe)
    return int(session.run([loop.input[0]], {session.get_inputs()[0].name: x})[0])


def test_chunk_does_not_change_the_maps(vgg_onnx):
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64)).astype(np.float32)
    model = onnx.load(vgg_onnx)
    one = run_explainer(build_explainer(model, "score-cam", chunk=1), x)[2]
    all_channels = run_explainer(build_explainer(model, "score-cam", chunk=64), x)[2]
    np.testing.assert_allclose(one, all_channels, atol=1e-6)


def test_bad_arguments_are_clear_errors(resnet_onnx):
    model = onnx.load(resnet_onnx)
    with pytest.raises(ValueError, match=r"unknown method .grad-cam.*score-cam"):
        build_explainer(model, "grad-cam")
    with pytest.raises(ValueError, match="chunk must be a positive integer, got 0"):
        build_explainer(model, chunk=0)
    with pytest.raises(LayerError, match="unknown layer 'nope'"):
        build_explainer(model, layer="nope")


def test_fixed_batch_model_is_refused(resnet_onnx):
    model = graph.load(resnet_onnx)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    with pytest.raises(ModelError, match=r"fixed batch of 2.*dynamic batch"):
        build_explainer(model)


@pytest.mark.parametrize(
    ("method", "passes", "part"),
    [
        ("score-cam", 24, "the whole model"),
        ("recipro-cam", 16, "the graph's tail after the layer"),
        ("ablation-cam", 24, "the graph's tail after the layer"),
    ],
)
def test_the_cli_prints_the_cost_per_image(resnet_onnx, tmp_path, capsys, method, passes, part):
    from onnxcam import Explainer
    from onnxcam.cli import main

    args = ["export-explainer", str(resnet_onnx), "--method", method, "--layer", "layer3"]
    assert main([*args, "-o", str(tmp_path / "e.onnx")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    skipped = {
        "score-cam": ", constant channels and repeated masks skipped",
        "ablation-cam": ", all-zero channels skipped",
    }.get(method, "")
    most = "at most " if skipped else ""
    per = "location" if method == "recipro-cam" else "channel"
    assert line == (
        f"cost per image: 1 forward pass + {most}{passes} passes of {part} (one per "
        f"{per} of layer3{skipped}), in Loop steps of 16"
    )
    # the host runs the same passes but for those it skips (constant channels, shared masks)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    host = Explainer(resnet_onnx, layer="layer3", progress=False).explain(x, method)
    assert host.metadata["passes_run"] + host.metadata["passes_skipped"] == passes


def test_channels_constant_in_every_image_run_no_pass_and_the_maps_stay_the_hosts(tmp_path):
    """A 1 x 1 conv net: a flat image makes every channel constant, a ReLU'd negative channel
    is constant everywhere; a batch mixing a flat and a random image, and a batch of two flat
    ones (no channel varies: the graph still answers, with zero maps), equal the host."""
    import torch

    from onnxcam.exporters import from_torch

    torch.manual_seed(0)
    net = conv_gap_linear(3, 6, 3)
    with torch.no_grad():
        net[0].bias[2] = -1e3  # channel 2 is dead in every image
    path = tmp_path / "flat.onnx"
    from_torch(net, torch.randn(2, 3, 16, 16), path)
    explainer = build_explainer(onnx.load(path), "score-cam", chunk=4)
    host = onnxcam.Explainer(path, progress=False)
    flat = np.full((1, 3, 16, 16), 0.5, np.float32)
    noisy = np.random.default_rng(4).standard_normal((1, 3, 16, 16)).astype(np.float32)
    for x in (np.concatenate([flat, noisy]), np.concatenate([flat, flat])):
        _, targets, maps = run_explainer(explainer, x)
        want = host.explain(x, "score-cam")
        assert np.array_equal(targets, want.targets)
        assert np.abs(maps - want.maps).max() <= 1e-4
    assert np.abs(maps).max() == 0  # two flat images: nothing varies, zero maps


def test_channels_with_equal_masks_share_a_pass_and_keep_the_hosts_maps(tmp_path):
    """Channel 1 is twice channel 0 (equal min-max normalised maps, one masked input), channel
    2 is dead: the host shares one pass and skips one per image, and the graph, which does the
    same per image, gives the host's maps."""
    import torch

    from onnxcam.exporters import from_torch

    torch.manual_seed(0)
    net = conv_gap_linear(3, 6, 3)
    with torch.no_grad():
        net[0].weight[1] = 2 * net[0].weight[0]
        net[0].bias[1] = 2 * net[0].bias[0]
        net[0].bias[2] = -1e3
    path = tmp_path / "shared.onnx"
    from_torch(net, torch.randn(2, 3, 16, 16), path)
    x = np.random.default_rng(5).standard_normal((3, 3, 16, 16)).astype(np.float32)
    want = onnxcam.Explainer(path, progress=False).explain(x, "score-cam")
    assert want.metadata["passes_shared"] == 3 and want.metadata["passes_run"] == 3 * 4
    for chunk in (1, 4):
        explainer = build_explainer(onnx.load(path), "score-cam", chunk=chunk)
        assert loop_trips(explainer, x) == -(-want.metadata["passes_run"] // chunk)  # as many
        _, targets, maps = run_explainer(explainer, x)
        assert np.array_equal(targets, want.targets)
        assert np.abs(maps - want.maps).max() <= 1e-4


@pytest.mark.parametrize("method", ["score-cam", "ablation-cam", "recipro-cam"])
def test_a_model_ending_in_softmax_is_explained_at_its_logits(tmp_path, method):
    """The graph reads class scores where the host does, before the final Softmax: its
    `logits` output is the logits, and its maps are the host's."""
    import torch

    from onnxcam.exporters import from_torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(conv_gap_linear(3, 6, 5), torch.nn.Softmax(dim=1)).eval()
    path = tmp_path / "softmax.onnx"
    from_torch(net, torch.randn(2, 3, 16, 16), path)
    x = np.random.default_rng(6).standard_normal((2, 3, 16, 16)).astype(np.float32)
    logits, targets, maps = run_explainer(build_explainer(onnx.load(path), method, chunk=4), x)
    with torch.no_grad():
        want_logits = net[0](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, want_logits, rtol=1e-5, atol=1e-5)
    want = onnxcam.Explainer(path, progress=False).explain(x, method)
    assert np.array_equal(targets, want.targets)
    assert np.abs(maps - want.maps).max() <= 1e-4
    assert (maps.max(axis=(1, 2)) > 0.9).all()
