"""`onnxcam layers MODEL`: the tensors a method can explain, the `auto` pick first."""

from __future__ import annotations

import argparse

from onnxcam.errors import LayerError

HELP = "list candidate target layers of an ONNX model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="ONNX file")


def run(args: argparse.Namespace) -> int:
    from onnxcam.engine import graph

    layers = graph.list_layers(graph.load(args.model))
    if not layers:
        raise LayerError(
            f"{args.model}: expected tensors of shape (N, K, H, W) or (N, K, T) to explain, "
            "found none"
        )
    width = max(len("tensor"), *(len(info.name) for info in layers))
    scopes = "  [module]" if any(info.scope for info in layers) else ""
    print(f"  {'tensor':<{width}}  {'op':<18} shape{scopes}")
    for info in layers:
        mark = "*" if info.auto else " "
        scope = f"  [{info.scope}]" if info.scope else ""
        read = f"  read as {info.kind_text()}" if info.grid is not None else ""
        print(f"{mark} {info.name:<{width}}  {info.op_type:<18} {info.shape_text()}{read}{scope}")
    print("* = what --layer auto picks" + ("; --layer takes a [module] too" if scopes else ""))
    return 0
