"""Box targets on decoded detections (NMS in the graph): the TinyDetector with NMS written after
its output, against torch (Grad-CAM by autograd through the kept detections' IoU x score,
Score-CAM by the paper's algorithm with that score); the packed (N, D, 6) table read as the
three outputs; output kinds; errors; nudenet's YOLOv8n with NMS equal to its raw output."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from target_models import export_detector, with_nms
from test_targets import CNN_METHODS, X, close, torch_grad_cam, torch_score_cam

from onnxcam import Explainer
from onnxcam.cli import main
from onnxcam.engine.graph import ModelInfo, outputs
from onnxcam.engine.methods.parts.relevance import RelevanceMethod
from onnxcam.engine.methods.registry import method_class
from onnxcam.engine.runner import open_session
from onnxcam.errors import TargetError


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decoded")
    model, raw_path = export_detector(folder, anchors_first=False)
    raw = onnx.load(raw_path)
    paths = {}
    for packed in (False, True):
        paths[packed] = folder / f"nms_{packed}.onnx"
        onnx.save(with_nms(raw, packed=packed), paths[packed])
    return model, paths


def kept_anchors(model, path, x: np.ndarray) -> np.ndarray:
    """The anchors behind the model's decoded detections of input x (1, C, H, W): each kept
    box is one anchor's box."""
    session = open_session(onnx.load(path))
    boxes, scores, _ = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        rows = model(torch.from_numpy(x))[0].numpy()
    cx, cy, w, h = rows[:4]
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    found = boxes[0][scores[0] > 0]
    return np.abs(corners[None] - found[:, None]).sum(axis=2).argmin(axis=1)


def decoded_score(out: torch.Tensor, kept: np.ndarray, cls: int, box) -> torch.Tensor:
    """Largest over the kept anchors of class cls of IoU(anchor box, box) x its best class
    score, in torch."""
    rows = out[:, :, torch.from_numpy(kept)]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    ix = (torch.minimum(x2, torch.tensor(box[2])) - torch.maximum(x1, torch.tensor(box[0]))).clamp(
        min=0
    )
    iy = (torch.minimum(y2, torch.tensor(box[3])) - torch.maximum(y1, torch.tensor(box[1]))).clamp(
        min=0
    )
    inter = ix * iy
    iou = inter / ((x2 - x1) * (y2 - y1) + (box[2] - box[0]) * (box[3] - box[1]) - inter)
    probs = rows[:, 4:]
    score, label = probs.max(dim=1)
    return (iou * score * (label == cls)).amax(dim=1)


def top_detection(path, x: np.ndarray) -> tuple[int, tuple[float, ...]]:
    """The class and box (moved by 2 % of its size, off IoU ties) of the top detection."""
    session = open_session(onnx.load(path))
    boxes, _, classes = session.run(None, {session.get_inputs()[0].name: x})
    x1, y1, x2, y2 = boxes[0, 0].astype(np.float64)
    w, h = x2 - x1, y2 - y1
    return int(classes[0, 0]), (x1 + 0.02 * w, y1 - 0.01 * h, x2 + 0.02 * w, y2 - 0.01 * h)


def test_decoded_outputs_are_named_and_read_together(decoded):
    _, paths = decoded
    found = outputs.outputs_of(ModelInfo(onnx.load(paths[False])))
    assert {o.name: o.kind for o in found} == dict.fromkeys(
        ("boxes", "scores", "classes"), outputs.DECODED
    )
    assert found[0].decoded == outputs.Decoded("boxes", "scores", "classes")
    (packed,) = outputs.outputs_of(ModelInfo(onnx.load(paths[True])))
    assert packed.kind == outputs.DECODED and packed.decoded.packed  # after NonMaxSuppression


def test_decoded_box_grad_cam_equals_torch_autograd(decoded):
    model, paths = decoded
    cls, box = top_detection(paths[False], X[:1])
    kept = kept_anchors(model, paths[False], X[:1])
    result = Explainer(paths[False], layer="stem", progress=False).explain(
        X[:1], "grad-cam", target=f"box:{cls}:" + ",".join(map(str, box))
    )
    raw, weights = torch_grad_cam(
        model, "stem", X[:1], lambda out: decoded_score(out, kept, cls, box)
    )
    close(result.weights, weights)
    close(result.raw, raw)


def test_decoded_box_score_cam_equals_the_papers_algorithm(decoded):
    """Masked passes keep other anchors than the unperturbed ones: the reference scores each
    pass over the anchors that pass's own NMS keeps, as the graph does."""
    model, paths = decoded
    cls, box = top_detection(paths[False], X[:1])
    explainer = Explainer(paths[False], layer="stem", progress=False)
    result = explainer.explain(X[:1], "score-cam", target=f"box:{cls}:" + ",".join(map(str, box)))

    def score(out):
        values = []
        for row in out:
            x_row = row[None]
            kept = nms_kept(x_row.numpy())
            values.append(decoded_score(x_row, kept, cls, box))
        return torch.cat(values)

    maps, weights, _, _ = torch_score_cam(model, "stem", X[:1], score)
    close(result.weights, weights)
    close(result.maps, maps)


def nms_kept(rows: np.ndarray) -> np.ndarray:
    """The anchors the graph's decoding keeps for one raw output (1, 4+K, A): the engine's host
    decoding (score 0.25, per-class NMS at IoU 0.45), at most 20."""
    from onnxcam.engine.detections import decode

    found = decode(rows, False)[0]
    cx, cy, w, h = rows[0, :4]
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return np.abs(corners[None] - found.boxes[:20, None]).sum(axis=2).argmin(axis=1)


@pytest.mark.parametrize("method", ["grad-cam", "score-cam", "d-rise", "ablation-cam"])
def test_packed_table_explains_as_the_three_outputs(decoded, method):
    _, paths = decoded
    options = {"n_masks": 64} if method == "d-rise" else {}
    maps = [
        Explainer(paths[packed], layer="stem", progress=False)
        .explain(X[:1], method, target="detection:0", **options)
        .maps
        for packed in (False, True)
    ]
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-6)


@pytest.mark.parametrize("method", CNN_METHODS)
def test_every_method_explains_a_box_of_decoded_detections(decoded, method):
    """Each method runs through the decoded target's score: the one it reports is torch's
    IoU x score over the kept detections, and its maps are maps; the relevance methods, whose
    rules start at a raw output, say so."""
    model, paths = decoded
    options = {"rise": {"n_masks": 64}, "ss-cam": {"n_samples": 2}, "is-cam": {"n_steps": 2}}
    cls, box = top_detection(paths[False], X[:1])
    kept = kept_anchors(model, paths[False], X[:1])
    with torch.no_grad():
        want = decoded_score(model(torch.from_numpy(X[:1])), kept, cls, box).numpy()
    explainer = Explainer(paths[True], layer="stem", progress=False)
    target = f"box:{cls}:" + ",".join(map(str, box))
    if issubclass(method_class(method), RelevanceMethod):
        with pytest.raises(TargetError, match=rf"{method} starts relevance at the model's raw"):
            explainer.explain(X[:1], method, target=target)
        return
    result = explainer.explain(X[:1], method, target=target, **options.get(method, {}))
    close(np.asarray(result.metadata["target_scores"]), want)
    assert result.maps.shape == (1, 32, 32) and 0 <= result.maps.min() <= result.maps.max() <= 1


def test_decoded_targets_that_match_nothing_are_errors(decoded):
    _, paths = decoded
    explainer = Explainer(paths[False], layer="stem", progress=False)
    with pytest.raises(TargetError, match=r"box:0:0,0,1,1.* matches no detection of input 0"):
        explainer.explain(X[:1], "grad-cam", target="box:0:0,0,1,1")
    with pytest.raises(TargetError, match=r"detection:30.*input 0 has \d+ detection"):
        explainer.explain(X[:1], "grad-cam", target="detection:30")
    with pytest.raises(TargetError, match=r"region:0.* needs a dense output"):
        explainer.explain(X[:1], "grad-cam", target="region:0")


def test_cli_explains_a_decoded_detector(decoded, tmp_path, capsys):
    _, paths = decoded
    np.save(tmp_path / "x.npy", X[:1])
    assert main(["layers", str(paths[False])]) == 0
    assert "detections, decoded (boxes, scores)" in capsys.readouterr().out
    argv = ["explain", str(paths[True]), str(tmp_path / "x.npy"), "--layer", "stem"]
    argv += ["--method", "grad-cam", "--target", "detection:0", "--out", str(tmp_path / "out")]
    assert main([*argv, "--quiet"]) == 0
    (saved,) = (tmp_path / "out").glob("*.npy")
    api = Explainer(paths[True], layer="stem", progress=False)
    expected = api.explain(X[:1], "grad-cam", target="detection:0").maps[0]
    np.testing.assert_allclose(np.load(saved), expected, atol=1e-6)


@pytest.mark.slow
def test_yolo_with_nms_explains_as_its_raw_output(nudenet_bytes):
    """Gradient methods: the largest IoU x score over the kept detections is the top one's,
    as over all anchors: the maps equal the raw model's."""
    from PIL import Image
    from skimage import data
    from test_targets_real import YOLO_LAYER

    picture = Image.fromarray(data.astronaut()).resize((320, 320))
    x = (np.asarray(picture, np.float32) / 255).transpose(2, 0, 1)[None]
    raw = onnx.load_from_string(nudenet_bytes)
    with_decoding = Explainer(with_nms(raw, packed=True), layer=YOLO_LAYER, progress=False)
    plain = Explainer(raw, layer=YOLO_LAYER, progress=False)
    for method in ("grad-cam", "layer-cam"):
        got = with_decoding.explain(x, method, target="detection:0")
        want = plain.explain(x, method, target="detection:0")
        assert got.metadata["target_scores"] == pytest.approx(want.metadata["target_scores"])
        assert np.abs(got.maps - want.maps).max() <= 1e-5
