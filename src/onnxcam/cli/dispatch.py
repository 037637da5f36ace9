"""The command line: `onnxcam layers | methods | explain | explain-dataset | evaluate | export |
export-explainer | bench | demo`, the Python API for the shell.

Errors in what the user gave print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

from onnxcam.errors import OnnxcamError

#: What `onnxcam --help` says first.
DESCRIPTION = (
    "Class activation maps, relevance and faithfulness metrics for ONNX image and time-series "
    "classifiers, run as batched ONNX Runtime inference. `onnxcam VERB --help` describes a verb."
)
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
    top = argparse.ArgumentParser(prog="onnxcam", description=DESCRIPTION)
    top.add_argument("--version", action="version", version=f"onnxcam {installed_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    for verb, module_name in VERBS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(verb, help=module.HELP))
    return top


def installed_version() -> str:
    """The installed distribution's version (what pip reports), or a note that there is none."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnxcam")
    except PackageNotFoundError:
        return "(not installed: run from a source tree)"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every `finally` runs (temporary files are
    removed) before the one-line exit, as for Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb. Bad input: one line on stderr, exit 2. Ctrl-C or SIGTERM: one line, exit
    130. A closed stdout (`| head`): exit 0 without a word."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        args = parser().parse_args(argv)
        return importlib.import_module(VERBS[args.command]).run(args)
    except (OnnxcamError, ValueError, TypeError) as err:
        print(f"onnxcam: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("onnxcam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away: point stdout at nothing so the exit flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
