"""The command line: one module per verb (add_arguments, run), shared argument sets in args."""

from onnxcam.cli.dispatch import main

__all__ = ["main"]
