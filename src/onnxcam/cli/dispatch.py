"""The command line: `onnxcam layers | methods | explain | explain-dataset | evaluate | export |
export-explainer | bench | demo`, the Python API for the shell.

Errors in what the user gave print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from onnxcam.errors import OnnxcamError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Verb -> the module that implements it (HELP, add_arguments, run), in the order of --help.
VERBS = {
    "layers": "onnxcam.cli.layers",
    "methods": "onnxcam.cli.methods",
    "explain": "onnxcam.cli.explain",
    "explain-dataset": "onnxcam.cli.explain_dataset",
    "evaluate": "onnxcam.cli.evaluate",
    "export": "onnxcam.cli.export",
    "export-explainer": "onnxcam.cli.export_explainer",
    "bench": "onnxcam.cli.bench",
    "demo": "onnxcam.cli.demo",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    top = argparse.ArgumentParser(prog="onnxcam", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    for verb, module_name in VERBS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(verb, help=module.HELP))
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return importlib.import_module(VERBS[args.command]).run(args)
    except (OnnxcamError, ValueError, TypeError) as err:
        print(f"onnxcam: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("onnxcam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
