"""An Evaluation on disk: summary.csv, values.csv, summary.md, PNG curve plots and report.html.

Plots are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend state); every
file is written to a temporary name and renamed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from onnxcam.evaluation.run import LEVEL, WIN, Evaluation
from onnxcam.io import prepare_dir, write_atomic

CURVE_LABELS = {
    "deletion": "fraction of positions deleted",
    "insertion": "fraction of positions inserted",
    "road-morf": "fraction imputed, most relevant first",
    "road-lerf": "fraction imputed, least relevant first",
}


def _csv(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def summary_csv(evaluation: Evaluation) -> bytes:
    rows = [
        [r.method, r.metric, r.mean, r.low, r.high, r.n, ("lower", "higher")[r.higher_is_better]]
        for r in evaluation.rows
    ]
    header = ["method", "metric", "mean", "ci_low", "ci_high", "n", "better"]
    return _csv(header, rows)


def values_csv(evaluation: Evaluation) -> bytes:
    rows = [
        [method, metric, name, float(value)]
        for (method, metric), values in evaluation.values.items()
        for name, value in zip(evaluation.names, values, strict=True)
    ]
    return _csv(["method", "metric", "input", "value"], rows)


def summary_markdown(evaluation: Evaluation) -> str:
    """One row per method, one column per metric: mean [low, high]."""
    better = {r.metric: r.higher_is_better for r in evaluation.rows}
    arrows = [f"{m} {'↑' if better[m] else '↓'}" for m in evaluation.metrics]
    lines = [
        "| method | " + " | ".join(arrows) + " | explain s |",
        "|---" * (len(arrows) + 2) + "|",
    ]
    cells = {(r.method, r.metric): r for r in evaluation.rows}
    for method in evaluation.methods:
        parts = [
            f"{cells[method, m].mean:.3f} [{cells[method, m].low:.3f}, {cells[method, m].high:.3f}]"
            for m in evaluation.metrics
        ]
        seconds = evaluation.seconds[method]
        lines.append(f"| {method} | " + " | ".join(parts) + f" | {seconds:.1f} |")
    n = len(evaluation.names)
    notes = [
        "",
        f"Mean over {n} inputs [{LEVEL:.0%} percentile-bootstrap interval, "
        f"{evaluation.resamples} resamples, seed {evaluation.seed}]; ↑ higher is better, "
        "↓ lower is better. avg-drop, increase and win are in %.",
    ]
    if evaluation.ties is not None:
        notes.append(
            f"{WIN}: share of inputs on which the method alone has the lowest avg-drop; "
            f"the lowest drop was shared on {evaluation.ties:.1f} % of inputs (counted for none)."
        )
    return "\n".join(lines + notes) + "\n"


def _figure(title: str, xlabel: str):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.6), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("class probability (mean over inputs)")
    axes.set_xlim(0, 1)
    axes.grid(alpha=0.3)
    return figure, axes


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def curve_plots(evaluation: Evaluation) -> dict[str, bytes]:
    """PNG per method (its curves, one line per curve metric) and per curve metric (all methods)."""
    plots: dict[str, bytes] = {}
    curve_metrics = [m for m in evaluation.metrics if any(k[1] == m for k in evaluation.curves)]
    for method in evaluation.methods:
        present = [m for m in curve_metrics if (method, m) in evaluation.curves]
        if not present:
            continue
        figure, axes = _figure(method, "fraction of positions changed")
        for metric in present:
            curves = evaluation.curves[method, metric]
            area = evaluation.values[method, metric].mean()
            axes.plot(curves.fractions, curves.scores.mean(0), label=f"{metric} ({area:.3f})")
        axes.legend(fontsize=8)
        plots[f"curves-{method}.png"] = _png(figure)
    for metric in curve_metrics:
        figure, axes = _figure(metric, CURVE_LABELS.get(metric, "fraction of positions changed"))
        for method in evaluation.methods:
            curves = evaluation.curves[method, metric]
            area = evaluation.values[method, metric].mean()
            axes.plot(curves.fractions, np.mean(curves.scores, 0), label=f"{method} ({area:.3f})")
        axes.legend(fontsize=7)
        plots[f"{metric}.png"] = _png(figure)
    return plots


def write_report(
    evaluation: Evaluation,
    out_dir: str | Path,
    pictures: Sequence[np.ndarray | None] | None = None,
    series: Sequence[np.ndarray] | None = None,
) -> list[Path]:
    """Write summary.csv, values.csv, summary.md, the PNG plots and report.html (the maps of
    every method over `pictures`, or under `series`, the table and the curves in one page);
    return their paths."""
    from onnxcam.evaluation.html import report_html

    out = prepare_dir(out_dir)
    plots = curve_plots(evaluation)
    page = report_html(
        f"onnxcam evaluate: {', '.join(evaluation.methods)}",
        evaluation.explanations,
        evaluation.names,
        pictures,
        series,
        evaluation,
        {name: png for name, png in plots.items() if not name.startswith("curves-")},
    )
    files = {
        "summary.csv": summary_csv(evaluation),
        "values.csv": values_csv(evaluation),
        "summary.md": summary_markdown(evaluation).encode(),
        **plots,
        "report.html": page.encode(),
    }
    return [write_atomic(out / name, data) for name, data in files.items()]
