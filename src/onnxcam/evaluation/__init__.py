"""Faithfulness: metrics over a Scorer (`metrics`), several methods scored at once
(`evaluate`), and the report on disk (CSV, Markdown, curve plots)."""

from onnxcam.evaluation import metrics
from onnxcam.evaluation.report import summary_markdown, write_report
from onnxcam.evaluation.run import Evaluation, bootstrap_interval, evaluate

__all__ = [
    "Evaluation",
    "bootstrap_interval",
    "evaluate",
    "metrics",
    "summary_markdown",
    "write_report",
]
