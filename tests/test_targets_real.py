"""Box and region targets on real models and photos: nudenet's YOLOv8n (320n.onnx) on
skimage's astronaut, rapidocr's DBNet text detector on skimage's page; both read from their
wheels. The numbers say where each map's mass lies."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from PIL import Image
from skimage import data

from onnxcam import Explainer
from onnxcam.engine.detections import decode
from onnxcam.engine.runner import open_session
from onnxcam.engine.targets import Region
from onnxcam.errors import TargetError

pytestmark = pytest.mark.slow

#: The class branch of the stride-16 head, where the astronaut's face is detected.
YOLO_LAYER = "/model.22/cv3.1/cv3.1.1/act/Mul_output_0"
#: DBNet's last 24-channel map before its output convolutions.
DBNET_LAYER = "batch_norm_1.tmp_4"


def inside(maps: np.ndarray, box: np.ndarray) -> float:
    """Share of a map's mass inside a box (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = np.clip(np.round(box).astype(int), 0, None)
    return float(maps[y1:y2, x1:x2].sum() / maps.sum())


def yolo_photo(nudenet_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut at 320 x 320 as YOLOv8n reads it, and its top detection's box (the face)."""
    picture = Image.fromarray(data.astronaut()).resize((320, 320))
    x = (np.asarray(picture, np.float32) / 255).transpose(2, 0, 1)[None]
    (raw,) = open_session(onnx.load_from_string(nudenet_bytes)).run(None, {"images": x})
    return x, decode(raw, False)[0].boxes[0]


@pytest.fixture(scope="module")
def yolo(nudenet_bytes):
    x, _ = yolo_photo(nudenet_bytes)
    explainer = Explainer(nudenet_bytes, layer=YOLO_LAYER, progress=False)
    (raw,) = explainer.runner.run(x, [explainer.output.name], 1)
    return explainer, x, decode(raw, False)[0]


def test_yolo_box_maps_lie_in_the_box(yolo):
    explainer, x, found = yolo
    box, cls = found.boxes[0], int(found.classes[0])
    area = (box[2] - box[0]) * (box[3] - box[1]) / 320**2
    shares = {}
    for method in ("grad-cam", "layer-cam", "score-cam"):
        result = explainer.explain(x, method, target="detection:0")
        shares[method] = inside(result.maps[0], box)
    given = explainer.explain(x, "grad-cam", target=f"box:{cls}:" + ",".join(map(str, box)))
    print(f"box area {area:.3f}, shares {shares}")
    assert area < 0.05
    assert shares["grad-cam"] > 0.6 and shares["layer-cam"] > 0.95
    assert shares["score-cam"] > 3 * area  # 0.15: masked passes reach past the face
    np.testing.assert_allclose(inside(given.maps[0], box), shares["grad-cam"], atol=1e-6)


def test_yolo_box_that_matches_nothing_is_an_error(yolo):
    explainer, x, _ = yolo
    with pytest.raises(TargetError, match=r"box:1:0,0,40,40.*matches no detection"):
        explainer.explain(x, "grad-cam", target="box:1:0,0,40,40")


def test_dbnet_region_maps_lie_on_the_text(rapidocr_det_bytes):
    picture = Image.fromarray(data.page()).convert("RGB").resize((384, 192))
    x = ((np.asarray(picture, np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    explainer = Explainer(rapidocr_det_bytes, layer=DBNET_LAYER, progress=False)
    (raw,) = explainer.runner.run(x, [explainer.output.name], 1)
    text = raw[0, 0] > raw[0, 0].max() / 2  # what region:0 (auto) covers
    whole = explainer.explain(x, "grad-cam", target="region:0").maps[0]
    left = np.zeros_like(text)
    left[:, :192] = True
    half = explainer.explain(x, "layer-cam", target=Region(0, left & text)).maps[0]
    on_text, on_left = (whole * text).sum() / whole.sum(), half[:, :192].sum() / half.sum()
    print(f"text share {text.mean():.3f}, on text {on_text:.3f}, left half {on_left:.4f}")
    assert text.mean() < 0.25 and on_text > 0.9
    assert on_left > 0.99


def test_yolo_d_rise_peaks_in_the_box(yolo):
    explainer, x, found = yolo
    result = explainer.explain(x, "d-rise", target="detections", n_masks=2000, cells=8, p=0.25)
    assert result.instances.shape == (1, len(found.scores), 320, 320)
    maps = result.instances[0, 0]
    x1, y1, x2, y2 = np.round(found.boxes[0]).astype(int)
    box = np.zeros(maps.shape, bool)
    box[y1:y2, x1:x2] = True
    ratio = maps[box].mean() / maps[~box].mean()
    peak_y, peak_x = np.unravel_index(maps.argmax(), maps.shape)
    print(f"d-rise: mean inside / outside {ratio:.2f}, peak at {peak_x}, {peak_y}")
    assert box[peak_y, peak_x] and ratio > 4  # 5.1


def test_cli_explains_the_yolo_detection_of_a_photo(nudenet_bytes, tmp_path, capsys):
    """As a user runs it: a PNG of the astronaut, the model file, `--target detection:0` and
    `--layer auto`; the saved map lies in the face's box."""
    from onnxcam.cli import main

    x, box = yolo_photo(nudenet_bytes)
    Image.fromarray((x[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(
        tmp_path / "astronaut.png"
    )
    (tmp_path / "yolo.onnx").write_bytes(nudenet_bytes)
    argv = ["explain", str(tmp_path / "yolo.onnx"), str(tmp_path / "astronaut.png")]
    argv += ["--method", "grad-cam", "--target", "detection:0", "--preprocess", "unit"]
    assert main([*argv, "--quiet", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    (saved,) = (tmp_path / "out").glob("*.npy")
    share = inside(np.load(saved), box)
    print(f"CLI Grad-CAM share in the face box {share:.3f}")
    assert share > 0.6
