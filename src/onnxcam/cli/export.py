"""`onnxcam export module:callable`: a PyTorch model to ONNX with layer outputs exposed."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from onnxcam.errors import OnnxcamError

HELP = "export a PyTorch model to ONNX with layer outputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("factory", help="module:callable returning a torch.nn.Module")
    parser.add_argument(
        "--input-shape", required=True, help="example input shape, e.g. 1,3,224,224"
    )
    parser.add_argument("--layers", default="", help="comma-separated module paths to expose")
    parser.add_argument("--legacy", action="store_true", help="use the TorchScript exporter")
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")


def input_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) < 2 or min(shape) < 1:
        raise OnnxcamError(
            f"--input-shape expects comma-separated positive sizes such as 1,3,224,224, got "
            f"{text!r}"
        )
    return shape


def run(args: argparse.Namespace) -> int:
    from onnxcam.exporters import from_torch

    module_name, _, attr = args.factory.partition(":")
    if os.getcwd() not in sys.path:  # as `python -m` does: modules of the current folder
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise OnnxcamError(
            f"cannot load {args.factory!r} (expected module:callable): {err}"
        ) from err
    try:
        import torch
    except ImportError:
        raise OnnxcamError("onnxcam export needs PyTorch: pip install 'onnxcam[torch]'") from None
    model = factory if isinstance(factory, torch.nn.Module) else None
    if model is None and callable(factory):
        try:
            model = factory()
        except Exception as err:  # the user's own code: say where it failed, in one line
            raise OnnxcamError(f"{args.factory!r} raised {type(err).__name__}: {err}") from err
    if not isinstance(model, torch.nn.Module):
        raise OnnxcamError(
            f"{args.factory!r}: expected a torch.nn.Module or a callable returning one, got "
            f"{type(model if model is not None else factory).__name__}"
        )
    shape = input_shape(args.input_shape)
    layers = [p for p in args.layers.split(",") if p]
    result = from_torch(model, torch.randn(*shape), args.output, layers, dynamo=not args.legacy)
    print(f"wrote {result.path} (max |ORT - torch| = {result.max_abs_diff:.2e})")
    for path, tensor in result.layers.items():
        print(f"  {path} -> {tensor}")
    return 0
