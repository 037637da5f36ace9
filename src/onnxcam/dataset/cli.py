"""`onnxcam explain-dataset`: the dataset engine on the command line."""

from __future__ import annotations

import argparse

EXIT_ERRORS = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `explain-dataset`; those shared with `explain` mean the same."""
    from onnxcam.cli import method_option

    parser.add_argument("model", help="ONNX file")
    parser.add_argument(
        "inputs", nargs="+", help="folders, globs, .txt list files or files of images / .npy"
    )
    parser.add_argument("--method", default="score-cam", help="method name (default score-cam)")
    parser.add_argument("--layer", default="auto", help="tensor name, module path or auto")
    parser.add_argument("--target", default="top1", help="top1 or a class index")
    parser.add_argument(
        "--option", type=method_option, action="append", default=[], help="method option KEY=VALUE"
    )
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
    parser.add_argument("--provider", default="cpu", help="cpu, cuda, tensorrt, openvino, ...")
    parser.add_argument("--allow-fallback", action="store_true", help="accept a CPU fallback")
    parser.add_argument("--batch-size", type=int, default=None, help="inputs per ORT run")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="ORT threads per worker (local: cores / workers; ray: 1)",
    )
    parser.add_argument("--preprocess", default="auto", help="imagenet, inception, unit or auto")
    parser.add_argument("--size", default=None, help="input size HxW for images")
    parser.add_argument("--png", action="store_true", help="also write PNG overlays")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any input failed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Explain the dataset, print the summary line; status 1 on failed inputs with --strict."""
    from onnxcam.dataset import Job, explain_dataset

    job = Job(
        model=args.model,
        out=args.out,
        method=args.method,
        layer=args.layer,
        target=None if args.target == "top1" else args.target,
        options=dict(args.option),
        provider=args.provider,
        allow_fallback=args.allow_fallback,
        batch_size=args.batch_size,
        threads=args.threads,
        preprocess=args.preprocess,
        size=args.size,
        overlays=args.png,
        chunk=args.chunk,
    )
    summary = explain_dataset(
        job, args.inputs, args.engine, args.workers, args.ray_address, progress=not args.quiet
    )
    print(f"explain-dataset: {summary.line()}")
    return EXIT_ERRORS if args.strict and summary.errors else 0
