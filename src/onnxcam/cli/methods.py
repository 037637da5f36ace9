"""`onnxcam methods`: every registered method with its options and their defaults."""

from __future__ import annotations

import argparse

HELP = "list the explanation methods and their options"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one method: its formula, paper and options")


def run(args: argparse.Namespace) -> int:
    from onnxcam.engine.methods import methods

    for name in methods():
        print(name)
    return 0
