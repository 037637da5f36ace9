"""`onnxcam explain-dataset`: every input of folders, globs and list files, resumable."""

from __future__ import annotations

import argparse
import sys

from onnxcam.cli import args as shared

HELP = "explain every input of a folder or list"
EXIT_ERRORS = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `explain-dataset`; those shared with `explain` mean the same."""
    parser.add_argument("model", help="ONNX file")
    parser.add_argument(
        "inputs", nargs="+", help="folders, globs, .txt list files or files of images / .npy"
    )
    shared.add_run_arguments(parser)
    parser.add_argument("--method", default="score-cam", help="method name (default score-cam)")
    shared.add_method_option(parser)
    parser.add_argument("--out", required=True, help="output directory (rerun it to resume)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--ray-address", default=None, help="Ray cluster (default: start one)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Ray actors (default 2); local: groups explained at once (default 2 on CPU)",
    )
    parser.add_argument("--chunk", type=int, default=8, help="inputs per explain call (8)")
    parser.add_argument("--png", action="store_true", help="also write PNG overlays")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any input failed")


def run(args: argparse.Namespace) -> int:
    """Explain the dataset, print the summary line; status 1 on failed inputs with --strict."""
    from onnxcam.dataset import Job, explain_dataset

    job = Job(
        model=args.model,
        out=args.out,
        method=args.method,
        target=shared.target(args),
        options=shared.method_options(args.method, args.option),
        **shared.run_options(args),
        preprocess=args.preprocess,
        size=args.size,
        resize=args.resize,
        overlays=args.png,
        chunk=args.chunk,
    )
    shared.preprocess_notice(args)
    summary = explain_dataset(
        job, args.inputs, args.engine, args.workers, args.ray_address, progress=not args.quiet
    )
    for line in summary.failure_lines():
        print(line, file=sys.stderr)
    print(f"explain-dataset: {summary.line()}")
    return EXIT_ERRORS if args.strict and summary.errors else 0
