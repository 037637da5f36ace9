"""`onnxcam methods [NAME]`: every registered method with its options and their defaults, or
one method's formula, paper and options."""

from __future__ import annotations

import argparse

HELP = "list the explanation methods and their options"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one method: its formula, paper and options")
    parser.add_argument(
        "--markdown", action="store_true", help="the table of methods as the README has it"
    )


def run(args: argparse.Namespace) -> int:
    from onnxcam.engine.methods import markdown_table, method_class, methods, options_of
    from onnxcam.engine.methods.registry import summary

    if args.markdown:
        print(markdown_table(), end="")
        return 0
    if args.name:
        cls = method_class(args.name)
        print(f"{cls.name}: {cls.__doc__.strip()}")
        return 0
    for name in methods():
        print(f"{name}: {summary(name)}")
        for key, spec in options_of(name).items():
            print(f"    --option {key}={spec.default_text()}  {spec.help} ({spec.describe()})")
    return 0
