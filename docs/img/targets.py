"""The README's pictures of targets beyond classes, from real models and photos:

- detection: nudenet's YOLOv8n detector (320n.onnx) on skimage's astronaut, every detection's
  box drawn, and each box explained by Grad-CAM, Layer-CAM (gradients of IoU x class score)
  and D-RISE (masks weighted by IoU x class-vector cosine);
- segmentation: rapidocr's DBNet text detector on skimage's page, the text it finds (where
  its map exceeds half its peak), Grad-CAM of that region, and Layer-CAM of the region's
  left half.

The models are read from their wheels (`make test` downloads them into .cache/wheels):

    python docs/img/targets.py   # writes docs/img/targets-detection.png, -segmentation.png
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from onnxcam import Explainer
from onnxcam.engine import targets
from onnxcam.io.pictures import overlay

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(os.environ.get("ONNXCAM_TEST_WHEELS", ROOT / ".cache" / "wheels"))
YOLO_LAYER = "/model.22/cv3.1/cv3.1.1/act/Mul_output_0"
DBNET_LAYER = "batch_norm_1.tmp_4"
DBNET = "ch_PP-OCRv4_det_infer.onnx"
#: D-RISE on a 320 px input: 8 cells of 40 px, a quarter kept (in/out mass 5x, peak in the box).
DRISE = {"n_masks": 2000, "cells": 8, "p": 0.25}


def from_wheel(package: str, member: str) -> bytes:
    found = sorted(WHEELS.glob(f"{package}-*.whl"))
    if not found:
        sys.exit(f"targets.py: expected the {package} wheel in {WHEELS} (make test downloads it)")
    wheel = found[-1]
    with zipfile.ZipFile(wheel) as opened:
        return opened.read(member)


def labelled(picture: np.ndarray, title: str, boxes=()) -> Image.Image:
    """The picture with boxes drawn and a title strip above it."""
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    for box in boxes:
        draw.rectangle([float(v) for v in box], outline=(255, 255, 255), width=2)
    framed = Image.new("RGB", (image.width, image.height + 18), (255, 255, 255))
    framed.paste(image, (0, 18))
    ImageDraw.Draw(framed).text((4, 3), title, fill=(0, 0, 0))
    return framed


def row(panels: list[Image.Image]) -> bytes:
    width = sum(p.width for p in panels) + 4 * (len(panels) - 1)
    out = Image.new("RGB", (width, max(p.height for p in panels)), (255, 255, 255))
    left = 0
    for panel in panels:
        out.paste(panel, (left, 0))
        left += panel.width + 4
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return buffer.getvalue()


def detection() -> bytes:
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((320, 320)))
    x = (photo.astype(np.float32) / 255).transpose(2, 0, 1)[None]
    explainer = Explainer(from_wheel("nudenet", "nudenet/320n.onnx"), YOLO_LAYER, progress=False)
    bound = explainer.bind(x, targets.parse("detections"), False)
    panels = [labelled(photo, f"{len(bound.boxes)} detection(s)", bound.boxes)]
    for k, (box, cls) in enumerate(zip(bound.boxes, bound.classes, strict=True)):
        for method, options in (("grad-cam", {}), ("layer-cam", {}), ("d-rise", DRISE)):
            maps = explainer.explain(x, method, target=f"detection:{k}", **options).maps[0]
            panels.append(labelled(overlay(maps, photo), f"{method}, box {k} (class {cls})", [box]))
    return row(panels)


def segmentation() -> bytes:
    photo = np.asarray(Image.fromarray(data.page()).convert("RGB").resize((384, 192)))
    x = ((photo.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    model = from_wheel(
        "rapidocr_onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
    )
    explainer = Explainer(model, DBNET_LAYER, progress=False)
    (raw,) = explainer.runner.run(x, [explainer.output.name], 1)
    text = raw[0, 0] > raw[0, 0].max() / 2
    left = text.copy()
    left[:, photo.shape[1] // 2 :] = False
    whole = explainer.explain(x, "grad-cam", target="region:0").maps[0]
    half = explainer.explain(x, "layer-cam", target=targets.Region(0, left)).maps[0]
    return row(
        [
            labelled(photo, "page"),
            labelled(overlay(text.astype(np.float32), photo), "text found (region:0 auto)"),
            labelled(overlay(whole, photo), "grad-cam, region:0"),
            labelled(overlay(half, photo), "layer-cam, the left half's text"),
        ]
    )


if __name__ == "__main__":
    here = Path(__file__).parent
    (here / "targets-detection.png").write_bytes(detection())
    (here / "targets-segmentation.png").write_bytes(segmentation())
