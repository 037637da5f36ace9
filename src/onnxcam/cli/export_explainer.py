"""`onnxcam export-explainer`: write the explainer graph, and optionally a Triton repository."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from onnxcam.errors import OnnxcamError

HELP = "write an explainer as one ONNX graph"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `onnxcam export-explainer`."""
    from onnxcam.cli.args import add_output_kind
    from onnxcam.serving import DEFAULT_CHUNK, INSTANCE_KINDS, METHODS

    parser.add_argument(
        "model", help="ONNX classifier, segmenter or raw detector with a dynamic batch axis"
    )
    parser.add_argument("--method", default="score-cam", choices=METHODS)
    parser.add_argument("--layer", default="auto", help="tensor name, module path or auto")
    parser.add_argument(
        "--model-output", default=None, help="the model output explained (default: its first)"
    )
    add_output_kind(parser)
    parser.add_argument(
        "--size", default=None, help="input size HxW where the model leaves H and W free"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=DEFAULT_CHUNK,
        help=f"(image, channel) or (image, location) items per Loop step: memory is chunk "
        f"perturbed inputs (default {DEFAULT_CHUNK})",
    )
    parser.add_argument(
        "--target-input",
        action="store_true",
        help="add an int64 input `target_class`, the class of each row (-1: the top one; a "
        "segmenter's class region, a detector's best box of that class)",
    )
    parser.add_argument(
        "--all-classes", action="store_true", help="maps of every class: (N, classes, H, W)"
    )
    parser.add_argument("--uint8", action="store_true", help="maps as uint8 0..255")
    parser.add_argument("-o", "--output", help="explainer ONNX file to write")
    parser.add_argument("--triton-repo", help="also write a Triton model repository here")
    parser.add_argument("--triton-name", default="explainer", help="model name in the repository")
    parser.add_argument("--max-batch-size", type=int, default=32, help="Triton max_batch_size")
    parser.add_argument(
        "--instance-kind", default="auto", choices=list(INSTANCE_KINDS), help="Triton instances"
    )


def cost_line(model) -> str:
    """One line: what the graph runs per image, read from its metadata."""
    from onnxcam.serving import METADATA_KEY

    entry = json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))
    cost = entry["cost_per_image"]
    part = "the whole model" if cost["through"] == "model" else "the graph's tail after the layer"
    skipped = {
        "score-cam": ", constant channels and repeated masks skipped",
        "ablation-cam": ", all-zero channels skipped",
    }.get(entry["method"], "")
    most = "at most " if skipped else ""
    return (
        f"cost per image: 1 forward pass + {most}{cost['passes']} passes of {part} (one per "
        f"{cost['per']} of {entry['layer']}{skipped}), in Loop steps of {entry['chunk']}"
    )


def run(args: argparse.Namespace) -> int:
    """Build the graph once; write it to -o and/or into the Triton repository."""
    from onnxcam.engine import graph
    from onnxcam.io import prepare_dir, write_atomic
    from onnxcam.io.inputs import input_size
    from onnxcam.serving import build_explainer, write_repository

    if not args.output and not args.triton_repo:
        raise OnnxcamError("export-explainer: expected -o FILE and/or --triton-repo DIR, got none")
    model = graph.load(args.model)
    size = input_size(args.size, graph.ModelInfo(model).input.shape) if args.size else None
    model = build_explainer(
        model,
        args.method,
        args.layer,
        args.chunk,
        target_input=args.target_input,
        all_classes=args.all_classes,
        uint8=args.uint8,
        output=args.model_output,
        output_kind=args.output_kind,
        size=size,
    )
    print(cost_line(model))
    if args.output:
        path = Path(args.output)
        prepare_dir(path.parent)
        write_atomic(path, model.SerializeToString())
        print(f"wrote {path} ({args.method}; outputs logits, target, map)")
    if args.triton_repo:
        folder = write_repository(
            model,
            args.triton_repo,
            args.triton_name,
            max_batch_size=args.max_batch_size,
            instance_kind=args.instance_kind,
        )
        print(f"wrote Triton model {folder}/config.pbtxt and {folder}/1/model.onnx")
    return 0
