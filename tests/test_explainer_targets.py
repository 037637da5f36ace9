"""The explainer graph on outputs beyond class scores, against the engine: a segmenter's class
regions (the host's region:C:auto) and a raw detector's best box of a class (the host's box
target, detection:0 for the top one), for every graph method; nudenet's YOLOv8n served."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from target_models import export_detector, export_unet, with_nms
from test_targets import box_score, torch_score_cam

from onnxcam import Explainer
from onnxcam.cli import main
from onnxcam.engine.detections import decode
from onnxcam.engine.runner import open_session
from onnxcam.errors import ModelError
from onnxcam.serving.explainer import build_explainer

METHODS = ("score-cam", "ablation-cam", "recipro-cam")
X = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)


def serve(path, method: str, given, layer: str = "auto", **options):
    """(per-class scores, targets, maps) of the explainer graph on X."""
    session = open_session(build_explainer(onnx.load(path), method, layer, chunk=4, **options))
    feeds = {session.get_inputs()[0].name: X}
    if given is not None:
        feeds["target_class"] = np.asarray(given, np.int64)
    return session.run(None, feeds)


@pytest.fixture(scope="module", params=[3, 1], ids=["classes", "one-map"])
def segmenter(request, tmp_path_factory):
    _, path = export_unet(tmp_path_factory.mktemp("served"), request.param)
    return Explainer(path, progress=False), path


@pytest.fixture(scope="module", params=[False, True], ids=["anchors-last", "anchors-first"])
def detector(request, tmp_path_factory):
    model, path = export_detector(tmp_path_factory.mktemp("served"), request.param)
    return model, Explainer(path, layer="stem", progress=False), path, request.param


def region_sums(raw: np.ndarray) -> np.ndarray:
    """(N, K): class k's scores summed where it is the argmax (a one-channel map: above half
    its peak), written in numpy."""
    if raw.shape[1] == 1:
        peak = raw.reshape(len(raw), -1).max(axis=1)[:, None, None, None]
        return (raw * (raw > peak / 2)).sum(axis=(2, 3))
    winner = raw.argmax(axis=1)[:, None]
    return (raw * (winner == np.arange(raw.shape[1])[None, :, None, None])).sum(axis=(2, 3))


@pytest.mark.parametrize("method", METHODS)
def test_segmenter_graph_explains_the_region_of_each_rows_class(segmenter, method):
    host, path = segmenter
    (raw,) = host.runner.run(X, [host.output.name], 2)
    sums = region_sums(raw)
    given = [-1, raw.shape[1] - 1]
    scores, chosen, maps = serve(path, method, given, target_input=True)
    np.testing.assert_allclose(scores, sums, rtol=1e-5, atol=1e-4)
    assert chosen.tolist() == [int(sums[0].argmax()), raw.shape[1] - 1]
    for i, cls in enumerate(chosen):
        expected = host.explain(X[i : i + 1], method, target=f"region:{cls}:auto")
        assert np.abs(maps[i] - expected.maps[0]).max() <= 1e-4


def test_segmenter_graph_maps_every_class_region_at_once(segmenter):
    host, path = segmenter
    (raw,) = host.runner.run(X, [host.output.name], 2)
    _, _, maps = serve(path, "ablation-cam", None, all_classes=True)
    assert maps.shape == (2, raw.shape[1], 32, 32)
    present = region_sums(raw) != 0
    for i in range(2):
        for cls in range(raw.shape[1]):
            if present[i, cls]:
                expected = host.explain(X[i : i + 1], "ablation-cam", target=f"region:{cls}:auto")
                assert np.abs(maps[i, cls] - expected.maps[0]).max() <= 1e-4
            else:  # no position of that class: no region, a flat map
                assert not maps[i, cls].any()


@pytest.mark.parametrize("method", METHODS)
def test_detector_graph_explains_the_top_detection(detector, method):
    _, host, path, anchors_first = detector
    (raw,) = host.runner.run(X, [host.output.name], 2)
    _, confidence = confidences(raw, anchors_first)
    scores, chosen, maps = serve(path, method, [-1, -1], "stem", target_input=True)
    np.testing.assert_allclose(scores, confidence.max(axis=2), rtol=1e-5)
    assert chosen.tolist() == [int(d.classes[0]) for d in decode(raw, anchors_first)]
    expected = [host.explain(X[i : i + 1], method, target="detection:0") for i in range(2)]
    assert np.abs(maps - np.concatenate([e.maps for e in expected])).max() <= 1e-4


def test_detector_graph_explains_a_given_class_at_its_best_box(detector):
    """Score-CAM of class c at the box of c's best anchor, against the paper's algorithm in
    torch scoring D-RISE's similarity (no detection of this random model has its best class
    other than the top one, so the host, which asks for a detection of class c, cannot be the
    reference)."""
    model, host, path, anchors_first = detector
    (raw,) = host.runner.run(X, [host.output.name], 2)
    rows, confidence = confidences(raw, anchors_first)
    cls = (int(confidence[0].max(axis=1).argmax()) + 1) % confidence.shape[1]
    _, chosen, maps = serve(path, "score-cam", [cls, cls], "stem", target_input=True)
    assert chosen.tolist() == [cls, cls]
    for i in range(2):
        cx, cy, w, h = rows[i, :4, confidence[i, cls].argmax()].astype(np.float64)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

        def score(out, box=box):
            return box_score(out, cls, box, anchors_first, "d-rise")

        expected, _, _, _ = torch_score_cam(model, "stem", X[i : i + 1], score)
        assert np.abs(maps[i] - expected[0]).max() <= 1e-4


def confidences(raw: np.ndarray, anchors_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """(N, rows, A) rows of raw detections and (N, K, A) class scores x objectness."""
    rows = np.swapaxes(raw, 1, 2) if anchors_first else raw
    return rows, rows[:, 5:] * rows[:, 4:5] if anchors_first else rows[:, 4:]


def test_export_explainer_cli_chooses_the_explained_output(tmp_path, capsys):
    _, path = export_unet(tmp_path)
    out = tmp_path / "explainer.onnx"
    args = ["export-explainer", str(path), "-o", str(out), "--method", "recipro-cam"]
    assert main([*args, "--model-output", "nope"]) == 2
    assert "the model has no output 'nope'" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--output-kind", "dense", "--model-output", "logits"]) == 0
    entry = onnx.load(out).metadata_props
    info = next(p.value for p in entry if p.key == "onnxcam.explainer")
    assert '"output": "logits"' in info and '"output_kind": "dense"' in info


def test_decoded_detections_are_refused_with_what_to_give(tmp_path):
    _, path = export_detector(tmp_path, anchors_first=False)
    decoded = with_nms(onnx.load(path))
    with pytest.raises(ModelError, match=r"output 'boxes' holds decoded detections .*expected"):
        build_explainer(decoded, "score-cam", "stem")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["score-cam", "ablation-cam", "recipro-cam"])
def test_yolo_graph_explains_the_top_detection_as_the_host(nudenet_bytes, method):
    """Equal within 1e-4, except Ablation-CAM: the face's score is 0.99999 and no channel
    moves it by more than 4e-5, so its weights (y - y_k) / y hold three float32 digits and
    the graph's and the host's ORT sessions (fused differently) differ in the last ones."""
    from PIL import Image
    from skimage import data
    from test_targets_real import YOLO_LAYER

    picture = Image.fromarray(data.astronaut()).resize((320, 320))
    x = (np.asarray(picture, np.float32) / 255).transpose(2, 0, 1)[None]
    host = Explainer(nudenet_bytes, layer=YOLO_LAYER, progress=False)
    model = onnx.load_from_string(nudenet_bytes)
    explainer = build_explainer(model, method, YOLO_LAYER, size=(320, 320))
    session = open_session(explainer)
    _, chosen, maps = session.run(None, {session.get_inputs()[0].name: x})
    (raw,) = host.runner.run(x, [host.output.name], 1)
    assert chosen[0] == decode(raw, False)[0].classes[0]
    expected = host.explain(x, method, target="detection:0")
    if method == "ablation-cam":
        score, weight = expected.metadata["target_scores"][0], np.abs(expected.weights).max()
        print(f"ablation-cam on the face: score {score:.7f}, largest weight {weight:.2e}")
        assert weight < 1e-4
        assert np.corrcoef(maps.ravel(), expected.maps.ravel())[0, 1] > 0.999
    else:
        assert np.abs(maps - expected.maps).max() <= 1e-4
