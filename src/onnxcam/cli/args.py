"""Argument sets that several verbs share, and what they build: the Explainer and the batch.

`explain`, `evaluate` and `explain-dataset` take the same model, run and input options, so a
flag means the same thing in each and is declared once, here.
"""

from __future__ import annotations

import argparse
import json
import sys


def key_value(text: str) -> tuple[str, str]:
    """KEY=VALUE as (key, value text); the method's declaration of KEY says how to read it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.replace("-", "_"), value


def scoped_option(text: str) -> tuple[str | None, str, str]:
    """NAME:KEY=VALUE for one method or metric, or KEY=VALUE for all."""
    head, _, _ = text.partition("=")
    scope, sep, rest = text.partition(":") if ":" in head else (None, "", text)
    if sep and not scope:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE, got {text!r}")
    return (scope, *key_value(rest))


def json_value(text: str) -> object:
    """Text read as JSON where it parses (numbers, true, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """How the model is explained and run: layer, target, provider, batching, layout."""
    from onnxcam.io.images import RESIZE_MODES

    parser.add_argument("--layer", default="auto", help="tensor name, module path or auto")
    parser.add_argument(
        "--target",
        action="append",
        default=None,
        help="top1, a class index, region:CLASS[:mask.png], box:CLASS:x1,y1,x2,y2 or "
        "detection:K (explain repeats it: one explanation per target)",
    )
    parser.add_argument("--output", default=None, help="the explained output (default: first)")
    add_output_kind(parser)
    parser.add_argument("--provider", default="cpu", help="cpu, cuda, tensorrt, openvino, ...")
    parser.add_argument("--allow-fallback", action="store_true", help="accept a CPU fallback")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="inputs per ORT run (8 on CPU, else 64)"
    )
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads")
    parser.add_argument(
        "--preprocess",
        default="auto",
        help="imagenet, inception, unit, or auto: what the exporter recorded, else imagenet",
    )
    parser.add_argument(
        "--size",
        default=None,
        help="input size HxW for images (default: the model's; where it leaves H and W free, "
        "each image's own)",
    )
    parser.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        default=None,
        help="how an image reaches an imposed size: centre crop, fit (letterbox) or stretch "
        "(default: crop where the model records ImageNet-style preprocessing, else fit)",
    )
    parser.add_argument(
        "--input-layout", default=None, help="channels_first or channels_last (default: recorded)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, its input files, and how they are run: shared by explain and evaluate."""
    parser.add_argument("model", help="ONNX file")
    parser.add_argument(
        "--labels",
        default=None,
        help="class names, one a line or a JSON list (default: the model's, else ImageNet's "
        "for 1000 classes)",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        help="images, preprocessed .npy or .csv arrays, folders, globs or .txt list files",
    )
    add_run_arguments(parser)


def add_method_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--option",
        type=key_value,
        action="append",
        default=[],
        help="method option KEY=VALUE (`onnxcam methods NAME` lists them)",
    )


def method_options(method: str, given: list[tuple[str, str]]) -> dict[str, object]:
    """The --option pairs of one method, each read as its declaration says."""
    from onnxcam.engine.methods import parse_options

    return parse_options(method, dict(given))


def targets(args: argparse.Namespace) -> list[str | None]:
    """Every --target as the API takes it (None for top1), top1 when none is given."""
    return [None if t == "top1" else t for t in args.target or ["top1"]]


def target(args: argparse.Namespace) -> str | None:
    """The one --target of a verb that explains one target."""
    given = targets(args)
    if len(given) > 1:
        from onnxcam.errors import ArgumentError

        raise ArgumentError(f"expected one --target here, got {len(given)}: {args.target}")
    return given[0]


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """--layer, --provider, --batch-size, --threads, ... as the Explainer's keyword arguments."""
    from onnxcam.api import RUN_OPTIONS

    return {key: getattr(args, key) for key in RUN_OPTIONS}


def explainer_from_args(args: argparse.Namespace):
    """The Explainer that the run options ask for, for one command's calls: not warmed (the
    first call opens what its method needs)."""
    from onnxcam.api import Explainer

    labels = getattr(args, "labels", None)
    options = run_options(args)
    return Explainer(args.model, progress=not args.quiet, labels=labels, warm=False, **options)


def inputs_from_args(args: argparse.Namespace, explainer):
    """(x, pictures, names) from the files INPUTS name (folders, globs and lists as
    explain-dataset reads them), preprocessed as --preprocess and --size say."""
    from onnxcam.io import load_inputs
    from onnxcam.io.listing import list_inputs

    reader = explainer.input_format(args.preprocess, args.size, args.resize)
    notice = explainer.preprocess_notice(args.preprocess)
    if notice:
        print(notice, file=sys.stderr)
    x, pictures, names = load_inputs(list_inputs(args.inputs), reader)
    images = [p for p in pictures if p is not None]
    if images:
        print(reader.size_note(images[0].shape[:2], len(images)))
    return x.astype(explainer.input_dtype, copy=False), pictures, names


def preprocess_notice(args: argparse.Namespace) -> None:
    """Print the notice of --preprocess replacing the model's recorded preprocessing, if any,
    for verbs that build no Explainer here (explain-dataset's workers build their own)."""
    from onnxcam.engine import graph, metadata
    from onnxcam.io.preprocess import override_notice

    if args.preprocess == "auto":  # nothing replaced: no need to read the model here
        return
    notice = override_notice(args.preprocess, metadata.stored_preprocess(graph.load(args.model)))
    if notice:
        print(notice, file=sys.stderr)


def add_output_kind(parser: argparse.ArgumentParser) -> None:
    """--output-kind: what the explained output holds where its shape cannot tell."""
    parser.add_argument(
        "--output-kind",
        default=None,
        help="class-scores, dense, detections, detections-anchors-last or "
        "detections-anchors-first, where the output's shape cannot tell",
    )
