"""`onnxcam demo`: a pretrained EfficientNet-Lite0 explains a photo, an FCN a time series."""

from __future__ import annotations

import argparse
from pathlib import Path

from onnxcam.errors import OnnxcamError

HELP = "explain a photo with a pretrained EfficientNet-Lite0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out", help="output directory")
    parser.add_argument("--provider", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from onnxcam.demo import run_demo

    try:
        return run_demo(Path(args.out), provider=args.provider, progress=not args.quiet)
    except ImportError as err:
        raise OnnxcamError(
            f"onnxcam demo needs its extra (missing {err.name or err}): "
            "pip install 'onnxcam[demo]' (or run `make demo`)"
        ) from None
