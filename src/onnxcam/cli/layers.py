"""`onnxcam layers MODEL`: the tensors a method can explain, the `auto` pick first, then the
blocks' attention probabilities that the attention methods read."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from onnxcam.errors import LayerError

if TYPE_CHECKING:
    from onnxcam.engine.graph import ModelInfo

HELP = "list candidate target layers of an ONNX model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="ONNX file")


def print_outputs(info: ModelInfo) -> None:
    """One line per graph output: its shape and what it holds (which targets explain it);
    the layers an onnxcam exporter exposed as outputs are left out."""
    from onnxcam.engine import metadata
    from onnxcam.engine.graph import outputs
    from onnxcam.engine.graph.layers import shape_text

    exposed = set(metadata.stored_layers(info.model).values())
    for output in outputs.outputs_of(info):
        if output.name in exposed:
            continue
        shape = shape_text(output.shape or ())
        held = output.text() if output.kind else "cannot tell: pass --output-kind"
        if output.is_detections or output.decoded is not None:
            held += "; under --layer auto a box target takes the layer its score flows through most"
        print(f"output {output.name}  {shape}  {held}")


def run(args: argparse.Namespace) -> int:
    from onnxcam.engine import graph
    from onnxcam.engine.graph import attention
    from onnxcam.engine.graph.layers import shape_text

    model = graph.ModelInfo(graph.load(args.model))
    inlined = graph.ModelInfo(graph.inline_function_ops(model.model))
    layers = graph.list_layers(model)
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
    print_outputs(model)
    found = attention.find(inlined)
    if found:
        print("attention probabilities (what attention-rollout, gradient-rollout, legrad read):")
        width = max(len(a.name) for a in found)
        for a in found:
            scope = f"  [{a.scope}]" if a.scope else ""
            shape = shape_text(inlined.specs[a.name].shape)
            print(f"  block {a.block:<3} {a.name:<{width}}  {shape}  {a.grid.text()}{scope}")
    return 0
