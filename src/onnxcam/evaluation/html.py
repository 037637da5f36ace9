"""report.html: one self-contained page (every picture embedded as base64 PNG, no external
file, script or style sheet) with the inputs x methods grid of maps, the metrics table with its
intervals, and the curve plots, so a run can be read, mailed or archived as one file."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

import numpy as np

from onnxcam.engine.explanation import Explanation
from onnxcam.evaluation.run import LEVEL, Evaluation
from onnxcam.io.pictures import overlay, png_bytes, series_png

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: center; vertical-align: top; }
td img { width: 200px; image-rendering: auto; display: block; margin: auto; }
.caption { font-size: 0.8em; }
.plots img { max-width: 48%; margin-right: 1%; }
"""


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def cell_png(
    result: Explanation, i: int, picture: np.ndarray | None, series: np.ndarray | None
) -> bytes:
    """Input i's map as a picture: blended over the input image, or alone, or (1-D) under
    its series."""
    heat = result.maps[i]
    if heat.ndim == 1:
        return series_png(heat, series, result.title(i))
    return png_bytes(overlay(heat, picture))


def grid_html(
    explanations: dict[str, Explanation],
    names: Sequence[str],
    pictures: Sequence[np.ndarray | None] | None = None,
    series: Sequence[np.ndarray] | None = None,
) -> str:
    """A table: one row per input, one column per method, each cell the map and its class."""
    methods = list(explanations)
    head = "".join(f"<th>{escape(m)}</th>" for m in methods)
    rows = []
    for i, name in enumerate(names):
        cells = []
        for method in methods:
            result = explanations[method]
            picture = pictures[i] if pictures is not None else None
            trace = series[i] if series is not None else None
            caption = f"{result.class_text(i)}, p={result.probabilities[i]:.3f}"
            source = data_uri(cell_png(result, i, picture, trace))
            cells.append(
                f'<td><img src="{source}" alt="{escape(method)} on {escape(name)}">'
                f'<div class="caption">{escape(caption)}</div></td>'
            )
        rows.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>input</th>{head}</tr>{''.join(rows)}</table>"


def metrics_html(evaluation: Evaluation) -> str:
    """The metrics table: per method and metric, the mean and its bootstrap interval."""
    cells = {(r.method, r.metric): r for r in evaluation.rows}
    better = {r.metric: r.higher_is_better for r in evaluation.rows}
    head = "".join(f"<th>{escape(m)} {'↑' if better[m] else '↓'}</th>" for m in evaluation.metrics)
    rows = []
    for method in evaluation.methods:
        parts = "".join(
            f"<td>{cells[method, m].mean:.3f} [{cells[method, m].low:.3f}, "
            f"{cells[method, m].high:.3f}]</td>"
            for m in evaluation.metrics
        )
        rows.append(f"<tr><th>{escape(method)}</th>{parts}</tr>")
    note = (
        f"<p>Mean over {len(evaluation.names)} inputs [{LEVEL:.0%} percentile-bootstrap "
        f"interval, {evaluation.resamples} resamples, seed {evaluation.seed}]; ↑ higher is "
        "better, ↓ lower is better.</p>"
    )
    return f"<table><tr><th>method</th>{head}</tr>{''.join(rows)}</table>{note}"


def report_html(
    title: str,
    explanations: dict[str, Explanation],
    names: Sequence[str],
    pictures: Sequence[np.ndarray | None] | None = None,
    series: Sequence[np.ndarray] | None = None,
    evaluation: Evaluation | None = None,
    plots: dict[str, bytes] | None = None,
) -> str:
    """The whole page: the maps' grid, then (for an evaluation) the metrics and the curves."""
    parts = [f"<h1>{escape(title)}</h1>", "<h2>Maps</h2>"]
    parts.append(grid_html(explanations, names, pictures, series))
    if evaluation is not None:
        parts += ["<h2>Metrics</h2>", metrics_html(evaluation)]
    if plots:
        images = "".join(
            f'<img src="{data_uri(png)}" alt="{escape(name)}">' for name, png in plots.items()
        )
        parts += ["<h2>Curves</h2>", f'<div class="plots">{images}</div>']
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
