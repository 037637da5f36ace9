"""Region and box targets against torch: Grad-CAM by autograd through the same target, Score-CAM
by the paper's algorithm scoring masked inputs with the target; output kinds; errors for targets
that match nothing."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.reference
import pytest
import references
import torch
from onnx import TensorProto, helper
from target_models import export_detector, export_unet

from onnxcam import Explainer
from onnxcam.cli import main
from onnxcam.engine import targets
from onnxcam.engine.graph import ModelInfo, outputs
from onnxcam.engine.methods.parts.attention import AttentionMethod
from onnxcam.engine.methods.registry import method_class, methods
from onnxcam.errors import InputError, ModelError, TargetError
from onnxcam.exporters import from_torch

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)

#: The attention methods need a transformer's attention, which these models have none of.
CNN_METHODS = [m for m in methods() if not issubclass(method_class(m), AttentionMethod)]


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    return export_unet(tmp_path_factory.mktemp("targets"))


def detector(tmp_path_factory, anchors_first: bool):
    return export_detector(tmp_path_factory.mktemp("targets"), anchors_first)


@pytest.fixture(scope="module", params=[False, True], ids=["anchors-last", "anchors-first"])
def det(request, tmp_path_factory):
    return detector(tmp_path_factory, request.param)


def region_score(out: torch.Tensor, cls: int, mask: np.ndarray) -> torch.Tensor:
    """pytorch-grad-cam's SemanticSegmentationTarget: (out[c] * mask).sum(), per input."""
    return (out[:, cls] * torch.from_numpy(mask)).sum(dim=(1, 2))


def box_score(out: torch.Tensor, cls: int, box, anchors_first: bool, how: str) -> torch.Tensor:
    """Largest over anchors of IoU x class score (FasterRCNNBoxScoreTarget's pairing) or of
    IoU x cosine(class vector, one-hot) x objectness (D-RISE), written with torch ops."""
    rows = out.transpose(1, 2) if anchors_first else out
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    ix = torch.minimum(x2, torch.tensor(box[2])) - torch.maximum(x1, torch.tensor(box[0]))
    iy = torch.minimum(y2, torch.tensor(box[3])) - torch.maximum(y1, torch.tensor(box[1]))
    inter = ix.clamp(min=0) * iy.clamp(min=0)
    iou = inter / (w * h + (box[2] - box[0]) * (box[3] - box[1]) - inter)
    first = 5 if anchors_first else 4
    probs = rows[:, first:]
    if how == "iou-score":
        score = iou * probs[:, cls]
    else:
        score = iou * probs[:, cls] / probs.norm(dim=1)
        if anchors_first:
            score = score * rows[:, 4]
    return score.amax(dim=1)


def torch_grad_cam(model, layer: str, x: np.ndarray, score) -> tuple[np.ndarray, np.ndarray]:
    """(raw map, channel weights): Grad-CAM by autograd through `score`."""
    seen = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out: seen.__setitem__("a", out)
    )
    xt = torch.from_numpy(x)
    out = model(xt)
    handle.remove()
    acts = seen["a"]
    (grads,) = torch.autograd.grad(score(out).sum(), acts)
    weights = grads.mean(dim=(2, 3))
    raw = torch.relu((weights[:, :, None, None] * acts).sum(1))
    return raw.detach().numpy(), weights.detach().numpy()


def torch_score_cam(model, layer: str, x: np.ndarray, score):
    """Score-CAM (the paper's algorithm, tests/references.py) scoring with the target."""
    seen = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out: seen.__setitem__("a", out)
    )
    with torch.no_grad():
        model(torch.from_numpy(x))
    handle.remove()
    return references.score_cam(
        lambda inp: score(model(inp))[:, None], seen["a"], torch.from_numpy(x)
    )


def top_box(model, cls: int, anchors_first: bool) -> tuple[float, ...]:
    """The box of the anchor with the largest class-`cls` score among those whose best class
    is `cls`, in input 0 (a detection),
    moved by 2 % of its size: IoU 1 would put every min and max of the IoU at a tie,
    where float32 rounding decides the side."""
    with torch.no_grad():
        out = model(torch.from_numpy(X))
    rows = (out.transpose(1, 2) if anchors_first else out)[0].numpy().astype(np.float64)
    first = 5 if anchors_first else 4
    conf = rows[first + cls] * (rows[4] if anchors_first else 1)
    a = int(np.where(rows[first:].argmax(0) == cls, conf, -np.inf).argmax())
    cx, cy, w, h = rows[:4, a]
    return (cx - w * 0.48, cy - h * 0.51, cx + w * 0.52, cy + h * 0.49)


def close(got: np.ndarray, want: np.ndarray, tol: float = 1e-4) -> None:
    """got equals want within tol of want's largest magnitude (weights and raw maps of box
    targets are ~1e-3: an absolute 1e-4 would let 10 % errors pass)."""
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=tol * scale + 1e-12, rtol=0)


MASK = np.zeros((32, 32), np.float32)
MASK[8:20, 4:28] = 1


def test_output_kinds_are_read_from_the_graph(unet, det, resnet_onnx):
    assert outputs.choose(ModelInfo(onnx.load(unet[1]))).kind == outputs.DENSE
    kind = outputs.choose(ModelInfo(onnx.load(det[1]))).kind
    assert kind == (outputs.ANCHORS_FIRST if det[0].anchors_first else outputs.ANCHORS_LAST)
    assert outputs.choose(ModelInfo(onnx.load(resnet_onnx))).kind == outputs.CLASS_SCORES


def test_region_target_grad_cam_equals_torch_autograd(unet):
    model, path = unet
    result = Explainer(path, layer="fuse", progress=False).explain(
        X, "grad-cam", target=outputs_region(1, MASK)
    )
    raw, weights = torch_grad_cam(model, "fuse", X, lambda out: region_score(out, 1, MASK))
    close(result.weights, weights)
    close(result.raw, raw)


def outputs_region(cls: int, mask: np.ndarray) -> targets.Region:
    return targets.Region(cls, mask)


def test_region_target_score_cam_equals_the_papers_algorithm(unet):
    model, path = unet
    result = Explainer(path, layer="fuse", progress=False).explain(
        X, "score-cam", target=outputs_region(2, MASK)
    )
    maps, weights, _, _ = torch_score_cam(model, "fuse", X, lambda o: region_score(o, 2, MASK))
    close(result.weights, weights)
    close(result.maps, maps)


def test_auto_region_is_where_the_class_is_the_argmax(unet):
    model, path = unet
    with torch.no_grad():
        out = model(torch.from_numpy(X))
    masks = (out.argmax(1) == 0).numpy().astype(np.float32)
    result = Explainer(path, layer="fuse", progress=False).explain(X, "grad-cam", "region:0")
    want = [region_score(out[i : i + 1], 0, masks[i]).item() for i in range(len(X))]
    close(np.asarray(result.metadata["target_scores"]), np.asarray(want))


def detected_classes(model) -> np.ndarray:
    """The classes that are some anchor's best class in input 0."""
    with torch.no_grad():
        out = model(torch.from_numpy(X[:1]))[0]
    rows = out.T if model.anchors_first else out
    return np.unique(rows[5 if model.anchors_first else 4 :].argmax(0).numpy())


@pytest.mark.parametrize("rank", [0, -1])
def test_box_target_grad_cam_equals_torch_autograd(det, rank):
    model, path = det
    cls = int(detected_classes(model)[rank])
    box = top_box(model, cls, model.anchors_first)
    result = Explainer(path, layer="stem", progress=False).explain(
        X[:1], "grad-cam", target=f"box:{cls}:" + ",".join(map(str, box))
    )

    def score(out):
        return box_score(out, cls, box, model.anchors_first, "iou-score")

    raw, weights = torch_grad_cam(model, "stem", X[:1], score)
    close(result.weights, weights)
    close(result.raw, raw)


def test_box_target_score_cam_scores_d_rise_similarity(det):
    model, path = det
    cls = int(detected_classes(model)[0])
    box = top_box(model, cls, model.anchors_first)
    result = Explainer(path, layer="stem", progress=False).explain(
        X[:1], "score-cam", target=f"box:{cls}:" + ",".join(map(str, box))
    )

    def score(out):
        return box_score(out, cls, box, model.anchors_first, "d-rise")

    maps, weights, _, _ = torch_score_cam(model, "stem", X[:1], score)
    close(result.weights, weights)
    close(result.maps, maps)


def test_detection_target_is_the_top_detections_box(det):
    model, path = det
    with torch.no_grad():
        out = model(torch.from_numpy(X[:1]))
    rows = (out.transpose(1, 2) if model.anchors_first else out)[0].double()
    probs = rows[5:] * rows[4] if model.anchors_first else rows[4:]
    a = int(probs.amax(0).argmax())
    cls = int(probs[:, a].argmax())
    cx, cy, w, h = rows[:4, a].tolist()
    box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    result = Explainer(path, layer="stem", progress=False).explain(
        X[:1], "grad-cam", target="detection:0"
    )

    def score(out):
        return box_score(out, cls, box, model.anchors_first, "iou-score")

    raw, _ = torch_grad_cam(model, "stem", X[:1], score)
    assert result.metadata["target"] == "detection:0"
    close(result.raw, raw)


def test_targets_that_match_nothing_are_errors_naming_them(unet, det):
    explainer = Explainer(det[1], layer="stem", progress=False)
    with pytest.raises(TargetError, match=r"box:0:0,0,1,1.*matches no detection of input 0"):
        explainer.explain(X[:1], "grad-cam", target="box:0:0,0,1,1")
    with pytest.raises(TargetError, match=r"detection:999.*detection\(s\), expected more"):
        explainer.explain(X[:1], "grad-cam", target="detection:999")
    with pytest.raises(TargetError, match=r"needs a dense output"):
        explainer.explain(X[:1], "grad-cam", target="region:0")
    with pytest.raises(ModelError, match=r"not class scores"):
        explainer.explain(X[:1], "grad-cam")
    segmenter = Explainer(unet[1], layer="fuse", progress=False)
    with pytest.raises(TargetError, match=r"region:1:array.*covers no position.*empty mask"):
        segmenter.explain(X, "grad-cam", target=outputs_region(1, np.zeros((32, 32))))
    with pytest.raises(TargetError, match=r"needs a detector's output: raw .* or decoded"):
        segmenter.explain(X, "grad-cam", target="detection:0")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "box:0:0,0,1,1"], "box:0:0,0,1,1' matches no detection of input 0"),
        (["--target", "box:0:1,2"], "expected box:CLASS:x1,y1,x2,y2 with x1 < x2"),
        (["--target", "box:0:5,5,1,1"], "expected box:CLASS:x1,y1,x2,y2 with x1 < x2"),
        (["--target", "region:x"], "expected an integer class, got 'x'"),
        (["--target", "detection:-1"], "expected detection rank K >= 0, got -1"),
        (["--target", "box:99:0,0,9,9"], "class 99 out of range, the output has 3 classes"),
        (["--output", "nope"], "the model has no output 'nope': expected one of logits"),
        (["--output-kind", "blobs"], "output kind must be one of class-scores, dense"),
    ],
)
def test_cli_target_errors_are_one_line(det, tmp_path, capsys, extra, message):
    np.save(tmp_path / "x.npy", X[:1])
    argv = ["explain", str(det[1]), str(tmp_path / "x.npy"), "--layer", "stem", "--quiet"]
    code = main([*argv, "--method", "grad-cam", *extra, "--out", f"{tmp_path}/o"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_cli_explains_each_target_and_layers_states_the_output(det, tmp_path, capsys):
    np.save(tmp_path / "x.npy", X[:1])
    argv = ["explain", str(det[1]), str(tmp_path / "x.npy"), "--layer", "stem", "--quiet"]
    argv += ["--method", "grad-cam", "--target", "detection:0", "--target", "detection:1"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "target0" / "x.png").exists()
    assert (tmp_path / "o" / "target1" / "x.png").exists()
    capsys.readouterr()
    assert main(["layers", str(det[1])]) == 0
    assert "detections, raw" in capsys.readouterr().out


def test_an_output_that_cannot_be_told_asks_for_its_kind():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "a", "b"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelError, match=r"--output-kind detections-anchors-last"):
        outputs.choose(ModelInfo(model))
    chosen = outputs.choose(ModelInfo(model), kind="detections-anchors-first")
    assert chosen.kind == outputs.ANCHORS_FIRST
    with pytest.raises(ModelError, match=r"no output 'z': expected one of y"):
        outputs.choose(ModelInfo(model), output="z")


def torch_occlusion(score, x: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """Occlusion (Zeiler & Fergus): per position, the mean score drop over covering windows."""
    xt = torch.from_numpy(x)
    with torch.no_grad():
        base = score(xt)
        total = torch.zeros(x.shape[0], *x.shape[2:], dtype=torch.float64)
        count = torch.zeros(x.shape[2:], dtype=torch.float64)
        for top in range(0, x.shape[2] - patch + 1, stride):
            for left in range(0, x.shape[3] - patch + 1, stride):
                covered = xt.clone()
                covered[:, :, top : top + patch, left : left + patch] = 0
                drop = (base - score(covered)).double()
                total[:, top : top + patch, left : left + patch] += drop[:, None, None]
                count[top : top + patch, left : left + patch] += 1
    return (total / count).numpy()


def test_occlusion_scores_a_box_by_d_rise_similarity(det):
    model, path = det
    cls = int(detected_classes(model)[0])
    box = top_box(model, cls, model.anchors_first)
    result = Explainer(path, layer="stem", progress=False).explain(
        X[:1], "occlusion", target=f"box:{cls}:" + ",".join(map(str, box)), patch=8, stride=4
    )

    def score(inp):
        return box_score(model(inp), cls, box, model.anchors_first, "d-rise")

    close(result.raw, torch_occlusion(score, X[:1], 8, 4))


def test_lrp_starts_at_the_output_with_the_targets_gradient_times_it(unet, det):
    """LRP under a target starts at the model's output with out * d target / d out: for a
    region, whose score is linear in the output, what reaches the input plus what biases took
    is torch's sum(out * gradient), which is the score."""
    model, path = unet
    result = Explainer(path, layer="fuse", progress=False).explain(
        X[:1], "lrp", target=outputs_region(1, MASK), composite="epsilon", epsilon=1e-9
    )
    score = np.asarray(result.metadata["target_scores"])
    reached = result.metadata["relevance_sum"] + result.metadata["absorbed"] * score
    out = model(torch.from_numpy(X[:1]))
    (grad,) = torch.autograd.grad(region_score(out, 1, MASK).sum(), out)
    close(reached, (out * grad).sum().detach().numpy()[None], 1e-4)
    close(reached, score, 1e-4)


@pytest.mark.parametrize("method", CNN_METHODS)
def test_every_method_explains_region_and_detection_targets(unet, det, method):
    """Each method runs through the target's scores: those it reports are torch's for the
    unperturbed inputs, and its maps are maps."""
    options = {"rise": {"n_masks": 64}, "ss-cam": {"n_samples": 2}, "is-cam": {"n_steps": 2}}
    (umodel, upath), (dmodel, dpath) = unet, det
    with torch.no_grad():
        out = umodel(torch.from_numpy(X))
        want = region_score(out, 1, MASK).numpy()
    result = Explainer(upath, layer="fuse", progress=False).explain(
        X, method, target=outputs_region(1, MASK), **options.get(method, {})
    )
    close(np.asarray(result.metadata["target_scores"]), want)
    assert result.maps.shape == (2, 32, 32) and 0 <= result.maps.min() <= result.maps.max() <= 1
    cls = int(detected_classes(dmodel)[0])
    box = top_box(dmodel, cls, dmodel.anchors_first)
    how = "iou-score" if method_class(method).uses_gradients else "d-rise"
    with torch.no_grad():
        want = box_score(dmodel(torch.from_numpy(X[:1])), cls, box, dmodel.anchors_first, how)
    result = Explainer(dpath, layer="stem", progress=False).explain(
        X[:1], method, target=f"box:{cls}:" + ",".join(map(str, box)), **options.get(method, {})
    )
    close(np.asarray(result.metadata["target_scores"]), want.numpy())
    assert result.maps.shape == (1, 32, 32) and 0 <= result.maps.min() <= result.maps.max() <= 1


def test_d_rise_explains_every_detection_as_the_paper_does(det):
    """D-RISE (Petsiuk et al. 2021) in torch over the same masks: w_i^t = max_j IoU(d_t, d_j)
    cos(c_t, c_j) o_j over the masked input's proposals, S_t = sum_i w_i^t M_i / (N p), for
    every detection t of the unperturbed input at once."""
    from onnxcam.engine.methods.rise import RiseMasks

    model, path = det
    explainer = Explainer(path, layer="stem", progress=False)
    n_masks, cells, p = 200, 4, 0.5
    result = explainer.explain(
        X[:1], "d-rise", target="detections", n_masks=n_masks, cells=cells, p=p, seed=3
    )
    bound = explainer.bind(X[:1], targets.parse("detections"), False)
    masks = RiseMasks(X[:1], n_masks, cells, p, 3, np.zeros(n_masks, int)).masks(np.arange(n_masks))
    with torch.no_grad():
        out = model(torch.from_numpy(X[:1] * masks[:, None]))
        weights = torch.stack(
            [
                box_score(out, int(c), tuple(b), model.anchors_first, "d-rise")
                for c, b in zip(bound.classes, bound.boxes, strict=True)
            ],
            dim=1,
        ).double()
    saliency = torch.einsum("it,ihw->thw", weights, torch.from_numpy(masks).double())
    want = references.minmax((saliency / (n_masks * p)).float()).numpy()
    assert result.instances.shape == (1, len(bound.boxes), 32, 32) and len(bound.boxes) > 1
    close(result.instances[0], want)
    close(result.maps[0], want[0])


def test_metrics_refuse_an_output_that_is_not_class_scores(det):
    from onnxcam.evaluation.metrics import average_drop

    explainer = Explainer(det[1], layer="stem", progress=False)
    maps = np.ones((1, 32, 32), np.float32)
    with pytest.raises(ModelError, match=r"metrics score classes: .*detections, raw"):
        average_drop(explainer, X[:1], maps, np.zeros(1, np.int64))


def two_output_model() -> onnx.ModelProto:
    """x (N, 2, 8, 8) -> Conv -> `seg` (N, 2, 8, 8), and GAP -> `cls` (N, 2); the first output
    is the class scores."""
    rng = np.random.default_rng(4)
    weights = onnx.numpy_helper.from_array(
        rng.standard_normal((2, 2, 3, 3)).astype(np.float32), "w"
    )
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["seg"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["seg"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["cls"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])],
        [
            helper.make_tensor_value_info("cls", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("seg", TensorProto.FLOAT, ["N", 2, 8, 8]),
        ],
        [weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_output_picks_the_explained_output_by_name(tmp_path, capsys):
    model = two_output_model()
    x = RNG.standard_normal((2, 2, 8, 8)).astype(np.float32)
    mask = np.zeros((8, 8), np.float32)
    mask[2:6, 1:4] = 1
    seg = onnx.reference.ReferenceEvaluator(model).run(["seg"], {"x": x})[0]
    explainer = Explainer(model, layer="x", output="seg", progress=False)
    result = explainer.explain(x, "score-cam", target=outputs_region(1, mask))
    close(np.asarray(result.metadata["target_scores"]), (seg[:, 1] * mask).sum(axis=(1, 2)))
    assert Explainer(model, layer="x", progress=False).output.kind == outputs.CLASS_SCORES
    onnx.save(model, tmp_path / "two.onnx")
    assert main(["layers", str(tmp_path / "two.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "output cls  (N, 2)  class scores" in printed
    assert "output seg  (N, 2, 8, 8)  dense map" in printed


def test_region_mask_from_a_png_equals_the_array(unet, tmp_path):
    from PIL import Image

    Image.fromarray((MASK * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    explainer = Explainer(unet[1], layer="fuse", progress=False)
    from_png = explainer.explain(X, "grad-cam", target=f"region:1:{tmp_path / 'mask.png'}")
    from_array = explainer.explain(X, "grad-cam", target=outputs_region(1, MASK))
    np.testing.assert_array_equal(from_png.maps, from_array.maps)
    with pytest.raises(InputError, match=r"mask .*nope.png.*expected a readable image"):
        explainer.explain(X, "grad-cam", target=f"region:1:{tmp_path / 'nope.png'}")


def test_decoded_detections_are_read_as_one_group():
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["boxes"]),
            helper.make_node("ReduceMax", ["x"], ["scores"], axes=[2], keepdims=0),
        ],
        "decoded",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 4])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 5, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 5]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    kinds = {o.name: o.kind for o in outputs.outputs_of(ModelInfo(model))}
    assert kinds == {"boxes": outputs.DECODED, "scores": outputs.DECODED}
    chosen = outputs.choose(ModelInfo(model), "scores")
    assert chosen.decoded == outputs.Decoded("boxes", "scores", None)
    assert chosen.reads == ("boxes", "scores")
    with pytest.raises(ModelError, match=r"output 'x2' of shape .*expected decoded detections"):
        outputs.choose(ModelInfo(_renamed(model, "scores", "x2")), "x2", "detections-decoded")


def _renamed(model: onnx.ModelProto, old: str, new: str) -> onnx.ModelProto:
    """The model with one output renamed and the boxes output dropped."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for node in copy.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
    kept = [o for o in copy.graph.output if o.name != "boxes"]
    del copy.graph.output[:]
    copy.graph.output.extend(kept)
    copy.graph.output[0].name = new
    return copy


def test_series_region_grad_cam_equals_torch_autograd(tmp_path):
    """A dense output of a series model, (N, K, T): the region is a span of time steps."""
    torch.manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(2, 8, 5, padding=2), torch.nn.ReLU(), torch.nn.Conv1d(8, 3, 1)
    ).eval()
    from_torch(model, torch.randn(2, 2, 64), tmp_path / "seg1d.onnx", layers=["1"])
    x = RNG.standard_normal((2, 2, 64)).astype(np.float32)
    span = np.zeros(64, np.float32)
    span[10:30] = 1
    result = Explainer(tmp_path / "seg1d.onnx", layer="1", progress=False).explain(
        x, "grad-cam", target=outputs_region(2, span)
    )
    seen = {}
    handle = model[1].register_forward_hook(lambda _m, _i, out: seen.__setitem__("a", out))
    out = model(torch.from_numpy(x))
    handle.remove()
    score = (out[:, 2] * torch.from_numpy(span)).sum()
    (grads,) = torch.autograd.grad(score, seen["a"])
    weights = grads.mean(dim=2)
    raw = torch.relu((weights[:, :, None] * seen["a"]).sum(1))
    assert outputs.choose(ModelInfo(onnx.load(tmp_path / "seg1d.onnx"))).kind == outputs.DENSE
    close(result.weights, weights.numpy())
    close(result.raw, raw.detach().numpy())


def test_given_labels_name_classes_not_a_targets_instances(unet):
    """Class names are the model's classes; a region's scores are no classes of it."""
    _, path = unet
    explainer = Explainer(path, layer="fuse", progress=False, labels=["a", "b", "c"])
    result = explainer.explain(X, "grad-cam", target="region:1")
    assert result.class_names is None and result.maps.shape == (2, 32, 32)
