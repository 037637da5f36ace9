"""Execution providers, batch sizes, precisions and methods compared on one model."""

from onnxcam.benchmark.providers import Settings, add_differences, run_bench, skip_reason

__all__ = ["Settings", "add_differences", "run_bench", "skip_reason"]
