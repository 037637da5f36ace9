"""`onnxcam evaluate`: explain inputs with several methods and score the maps with metrics.

Writes summary.csv, summary.md, values.csv and the curve plots to --out, and prints the table.
"""

from __future__ import annotations

import argparse

HELP = "score methods with faithfulness metrics: CSV, Markdown table and curve plots"
DEFAULT_METRICS = "deletion,insertion,avg-drop,increase"


def _scoped_option(text: str) -> tuple[str | None, str, object]:
    """NAME:KEY=VALUE for one method or metric, or KEY=VALUE for all methods."""
    from onnxcam.cli import method_option

    head, _, _ = text.partition("=")
    scope, sep, rest = text.partition(":") if ":" in head else (None, "", text)
    if sep and not scope:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE, got {text!r}")
    return (scope, *method_option(rest))


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from onnxcam.cli import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument(
        "--methods", default="score-cam", help="comma-separated method names, or all"
    )
    parser.add_argument(
        "--metrics", default=DEFAULT_METRICS, help=f"comma-separated (default {DEFAULT_METRICS})"
    )
    parser.add_argument(
        "--option",
        type=_scoped_option,
        action="append",
        default=[],
        help="method option METHOD:KEY=VALUE (KEY=VALUE: every method)",
    )
    parser.add_argument(
        "--metric-option",
        type=_scoped_option,
        action="append",
        default=[],
        help="metric option METRIC:KEY=VALUE, e.g. deletion:step=1792",
    )
    parser.add_argument(
        "--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--out", default="report", help="output directory")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _grouped(options, names: list[str], kind: str) -> dict[str, dict]:
    grouped: dict[str, dict] = {}
    for scope, key, value in options:
        if scope is None and kind == "metric":
            raise ValueError(f"metric options need a metric: expected METRIC:{key}=..., got none")
        for name in names if scope is None else [scope]:
            grouped.setdefault(name, {})[key] = value
    return grouped


def run(args: argparse.Namespace) -> int:
    from onnxcam.cli import explainer_from_args, inputs_from_args
    from onnxcam.engine.methods import methods as registered
    from onnxcam.evaluation import evaluate
    from onnxcam.files import prepare_dir
    from onnxcam.report import summary_markdown, write_report

    methods = registered() if args.methods == "all" else _names(args.methods)
    metrics = _names(args.metrics)
    if args.resamples < 1:
        raise ValueError(f"--resamples must be a positive integer, got {args.resamples}")
    out = prepare_dir(args.out)
    explainer = explainer_from_args(args)
    x, _, names = inputs_from_args(args, explainer)
    result = evaluate(
        explainer,
        x,
        methods,
        metrics,
        method_options=_grouped(args.option, methods, "method"),
        metric_options=_grouped(args.metric_option, metrics, "metric"),
        target=None if args.target == "top1" else args.target,
        names=names,
        resamples=args.resamples,
        seed=args.seed,
    )
    paths = write_report(result, out)
    print(summary_markdown(result), end="")
    print(f"wrote {', '.join(p.name for p in paths)} to {out}")
    return 0
