"""`onnxcam evaluate`: explain inputs with several methods and score the maps with metrics.

Writes summary.csv, summary.md, values.csv, the curve plots and report.html (one page with
every map, the table and the curves) to --out, and prints the table.
"""

from __future__ import annotations

import argparse

from onnxcam.cli import args as shared
from onnxcam.errors import ArgumentError

HELP = "score methods with faithfulness metrics: CSV, Markdown table and curve plots"
DEFAULT_METRICS = "deletion,insertion,avg-drop,increase"


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shared.add_model_arguments(parser)
    parser.add_argument(
        "--methods", default="score-cam", help="comma-separated method names, or all"
    )
    parser.add_argument(
        "--metrics", default=DEFAULT_METRICS, help=f"comma-separated (default {DEFAULT_METRICS})"
    )
    parser.add_argument(
        "--option",
        type=shared.scoped_option,
        action="append",
        default=[],
        help="method option METHOD:KEY=VALUE (KEY=VALUE: every method)",
    )
    parser.add_argument(
        "--metric-option",
        type=shared.scoped_option,
        action="append",
        default=[],
        help="metric option METRIC:KEY=VALUE, e.g. deletion:step=1792",
    )
    parser.add_argument(
        "--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--out", default="report", help="output directory")


def _grouped(options, names: list[str], kind: str) -> dict[str, dict]:
    """{name: {key: value text}} from NAME:KEY=VALUE (KEY=VALUE: every method)."""
    grouped: dict[str, dict] = {}
    for scope, key, value in options:
        if scope is None and kind == "metric":
            raise ArgumentError(
                f"metric options need a metric: expected METRIC:{key}=..., got none"
            )
        for name in names if scope is None else [scope]:
            grouped.setdefault(name, {})[key] = value
    return grouped


def _method_options(options, methods: list[str]) -> dict[str, dict]:
    """Each method's options read as its declarations say (methods not evaluated are left for
    `evaluate` to refuse by name)."""
    grouped = _grouped(options, methods, "method")
    return {
        name: shared.method_options(name, list(given.items())) if name in methods else given
        for name, given in grouped.items()
    }


def run(args: argparse.Namespace) -> int:
    from onnxcam.engine.methods import methods as registered
    from onnxcam.evaluation import evaluate, summary_markdown, write_report
    from onnxcam.io import prepare_dir

    methods = registered() if args.methods == "all" else _names(args.methods)
    metrics = _names(args.metrics)
    if args.resamples < 1:
        raise ArgumentError(f"--resamples must be a positive integer, got {args.resamples}")
    method_options = _method_options(args.option, methods)
    metric_options = {
        name: {key: shared.json_value(text) for key, text in given.items()}
        for name, given in _grouped(args.metric_option, metrics, "metric").items()
    }
    out = prepare_dir(args.out)
    explainer = shared.explainer_from_args(args)
    x, pictures, names = shared.inputs_from_args(args, explainer)
    result = evaluate(
        explainer,
        x,
        methods,
        metrics,
        method_options=method_options,
        metric_options=metric_options,
        target=shared.target(args),
        names=names,
        resamples=args.resamples,
        seed=args.seed,
    )
    images = pictures if all(p is not None for p in pictures) else None
    series = explainer.validate(x) if x.ndim == 3 else None
    paths = write_report(result, out, images, series)
    print(summary_markdown(result), end="")
    print(f"wrote {', '.join(p.name for p in paths)} to {out}")
    return 0
