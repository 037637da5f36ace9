"""`onnxcam bench MODEL`: execution providers, batch sizes and methods compared on one model."""

from __future__ import annotations

import argparse

from onnxcam.errors import ArgumentError

HELP = "compare ONNX Runtime providers on one model"
DEFAULT_PROVIDERS = "cpu,cuda,tensorrt,openvino"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `onnxcam bench`."""
    parser.add_argument("model", help="ONNX classifier")
    parser.add_argument("--providers", default=DEFAULT_PROVIDERS, help="comma-separated")
    parser.add_argument("--batch-sizes", default="1,8,32,128", help="comma-separated")
    parser.add_argument("--methods", default="score-cam", help="comma-separated method names")
    parser.add_argument("--layer", default="auto", help="tensor name, module path or auto")
    parser.add_argument("--images", type=int, default=2, help="random inputs explained per run")
    parser.add_argument("--rounds", type=int, default=20, help="timed forward batches per size")
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads")
    parser.add_argument("--fp16", action="store_true", help="also run in fp16 (CUDA only)")
    parser.add_argument(
        "--int8", action="store_true", help="also run an int8-quantized copy (CPU, OpenVINO)"
    )
    parser.add_argument("--out", default="bench-out", help="directory for jsonl, md and png")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ArgumentError(f"{what} expects comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ArgumentError(f"{what} expects positive integers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    """Measure, then write bench.jsonl, bench.md and bench.png; print the tables."""
    from onnxcam.benchmark.providers import Settings, markdown, plot_png, run_bench, skip_reason
    from onnxcam.engine import graph
    from onnxcam.engine.methods import methods
    from onnxcam.io import json_text, prepare_dir, write_atomic

    providers = [p.strip().lower() for p in args.providers.split(",") if p.strip()]
    for provider in providers:
        skip_reason(provider)  # unknown names are errors before anything runs
    chosen = tuple(m for m in args.methods.split(",") if m)
    unknown = [m for m in chosen if m not in methods()]
    if unknown:
        raise ArgumentError(
            f"unknown method {unknown[0]!r}: expected one of {', '.join(methods())}"
        )
    if args.images < 1 or args.rounds < 1:
        raise ArgumentError(f"--images and --rounds must be >= 1, got {args.images}, {args.rounds}")
    graph.load(args.model)  # a missing or broken file is an error before any process starts
    out = prepare_dir(args.out)
    settings = Settings(
        str(args.model),
        args.layer,
        _int_list(args.batch_sizes, "--batch-sizes"),
        chosen,
        args.images,
        args.rounds,
        args.threads,
    )
    rows = run_bench(settings, providers, args.fp16, progress=not args.quiet, int8=args.int8)
    write_atomic(out / "bench.jsonl", "".join(json_text(r) + "\n" for r in rows).encode())
    table = markdown(rows)
    write_atomic(out / "bench.md", table.encode())
    write_atomic(out / "bench.png", plot_png(rows))
    print(table)
    print(f"wrote {out}/bench.jsonl, bench.md and bench.png")
    return 0
