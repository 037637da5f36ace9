"""The README's picture of what `onnxcam explain --panel` writes: the demo's EfficientNet-Lite0
on scikit-image's cat, explained by Score-CAM, the photo beside the titled map and its colour
bar, class names from ImageNet's.

    python docs/img/overlays.py   # writes docs/img/overlay-chelsea.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image
from skimage import data

from onnxcam.cli import main
from onnxcam.demo import efficientnet_lite0_onnx

OUT = Path(__file__).resolve().parent / "overlay-chelsea.png"


def make() -> None:
    """Explain the photo through the command line, as a user would, and keep its picture."""
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "chelsea.png"
        Image.fromarray(data.chelsea()).save(photo)
        args = ["explain", str(efficientnet_lite0_onnx()), str(photo), "--panel", "--quiet"]
        if main([*args, "--out", folder]) != 0:
            sys.exit(1)
        OUT.write_bytes((Path(folder) / "chelsea.png").read_bytes())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    make()
