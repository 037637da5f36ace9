"""`onnxcam layers MODEL`: the tensors a method can explain, the `auto` pick first."""

from __future__ import annotations

import argparse

HELP = "list candidate target layers of an ONNX model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="ONNX file")


def run(args: argparse.Namespace) -> int:
    from onnxcam.engine import graph

    layers = graph.list_layers(graph.load(args.model))
    if not layers:
        print("no tensors with spatial axes found")
        return 1
    width = max(len(info.name) for info in layers)
    for info in layers:
        mark = "*" if info.auto else " "
        scope = f"  [{info.scope}]" if info.scope else ""
        print(f"{mark} {info.name:<{width}}  {info.op_type:<18} {info.shape_text()}{scope}")
    print("* = what --layer auto picks")
    return 0
