"""`onnxcam export module:callable`: a PyTorch model to ONNX with layer outputs exposed."""

from __future__ import annotations

import argparse
import importlib

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


def run(args: argparse.Namespace) -> int:
    from onnxcam.exporters import from_torch

    module_name, _, attr = args.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise OnnxcamError(
            f"cannot load {args.factory!r} (expected module:callable): {err}"
        ) from err
    import torch

    model = factory() if not isinstance(factory, torch.nn.Module) else factory
    shape = tuple(int(v) for v in args.input_shape.split(","))
    layers = [p for p in args.layers.split(",") if p]
    result = from_torch(model, torch.randn(*shape), args.output, layers, dynamo=not args.legacy)
    print(f"wrote {result.path} (max |ORT - torch| = {result.max_abs_diff:.2e})")
    for path, tensor in result.layers.items():
        print(f"  {path} -> {tensor}")
    return 0
