"""`--layer auto` under a box target: the feature map the box's score flows through most. On the
TinyDetector (heads at strides 4 and 8) it is the features of the head whose anchor made the
detection, and the contributions equal torch autograd's; on nudenet's YOLOv8n it is the class
branch at the scale of the astronaut's face, raw or with NMS in the graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from target_models import export_detector, with_nms
from test_targets import X

from onnxcam import Explainer
from onnxcam.exporters import from_torch

#: TinyDetector's anchors: 8 x 8 cells of the stride-4 head, then 4 x 4 of the stride-8 head.
STRIDE4_ANCHORS = 64


@pytest.fixture(scope="module", params=[False, True], ids=["anchors-last", "anchors-first"])
def det(request, tmp_path_factory):
    return export_detector(tmp_path_factory.mktemp("box_layer"), request.param)


@pytest.fixture(scope="module", params=[False, True], ids=["anchors-last", "anchors-first"])
def det_stride4(request, tmp_path_factory):
    """The detector with its stride-8 class scores lowered, so that its top detections come
    from the stride-4 head."""
    model, _ = export_detector(tmp_path_factory.mktemp("box_layer4"), request.param)
    first = 5 if model.anchors_first else 4
    with torch.no_grad():
        model.head8.bias[first:] -= 4.0
    path = tmp_path_factory.mktemp("box_layer4") / "stride4.onnx"
    from_torch(model, torch.randn(2, 3, 32, 32), path, layers=["stem"])
    return model, path


def best_anchors(model, x: np.ndarray) -> np.ndarray:
    """Per input, the anchor with the largest class score (x objectness): the top detection."""
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    rows = (out.transpose(1, 2) if model.anchors_first else out).numpy()
    conf = rows[:, 5:] * rows[:, 4:5] if model.anchors_first else rows[:, 4:]
    return conf.max(axis=1).argmax(axis=1)


def torch_contribution(model, module: str, x: np.ndarray, score) -> float:
    """|sum(dS/dA * A)| summed over inputs, by autograd."""
    seen = {}
    handle = model.get_submodule(module).register_forward_hook(
        lambda _m, _i, out: seen.__setitem__("a", out)
    )
    out = model(torch.from_numpy(x))
    handle.remove()
    (grads,) = torch.autograd.grad(score(out).sum(), seen["a"])
    return float((grads * seen["a"]).flatten(1).sum(1).abs().sum().detach())


@pytest.mark.parametrize("which", ["stride-8", "stride-4"])
def test_auto_takes_the_head_whose_anchor_detected_the_box(det, det_stride4, which):
    """Stride 8: its features get the box's score, and `stem` under them holds as much
    (the last in graph order is taken); stride 4: only `stem`, which head4 reads, gets it."""
    model, path = det if which == "stride-8" else det_stride4
    explainer = Explainer(path, progress=False)
    for i in range(len(X)):
        stride4 = best_anchors(model, X[i : i + 1])[0] < STRIDE4_ANCHORS
        assert stride4 == (which == "stride-4")
        result = explainer.explain(X[i : i + 1], "grad-cam", target="detection:0")
        shares = result.metadata["layer_shares"]
        assert result.layer == ("stem" if stride4 else "max_pool2d_2")
        if stride4:  # the stride-8 features carry none of it
            assert shares["max_pool2d_2"] < 0.01 * shares["stem"]


def test_contributions_equal_torch_autograd(det):
    from test_targets import box_score, detected_classes, top_box

    model, path = det
    cls = int(detected_classes(model)[0])
    box = top_box(model, cls, model.anchors_first)  # off the IoU-1 tie of the anchor's own box
    result = Explainer(path, progress=False).explain(
        X[:1], "grad-cam", target=f"box:{cls}:" + ",".join(map(str, box))
    )
    shares = result.metadata["layer_shares"]

    def score(out):
        return box_score(out, cls, box, model.anchors_first, "iou-score")

    for module, tensor in (("stem", "stem"), ("deeper", "max_pool2d_2")):
        want = torch_contribution(model, module, X[:1], score)
        assert shares[tensor] == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_a_given_layer_is_kept(det):
    _, path = det
    result = Explainer(path, layer="max_pool2d_2", progress=False).explain(
        X[:1], "grad-cam", target="detection:0"
    )
    assert result.layer == "max_pool2d_2" and "layer_shares" not in result.metadata


@pytest.mark.slow
@pytest.mark.parametrize("decoded", [False, True], ids=["raw", "nms"])
def test_yolo_auto_takes_the_class_branch_at_the_faces_scale(nudenet_bytes, decoded):
    from test_targets_real import YOLO_LAYER, inside, yolo_photo

    model = onnx.load_from_string(nudenet_bytes)
    if decoded:
        model = with_nms(model, packed=True)
    x, box = yolo_photo(nudenet_bytes)
    result = Explainer(model, progress=False).explain(x, "grad-cam", target="detection:0")
    assert result.layer == YOLO_LAYER
    assert inside(result.maps[0], box) > 0.6
