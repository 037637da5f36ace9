"""The registry of methods: `@register` makes an options dataclass of a method class and lists
it under its CLI name; options given by name are checked against its declarations.

The registry also writes what users read about the methods: the `onnxcam methods` listing and
the README's table, both from the declarations.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from onnxcam.engine.methods.base import Method
from onnxcam.engine.options import Option, OptionError, declared

_REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: a frozen keyword-only dataclass of the declared options, available
    under `cls.name`; its docstring gains the list of options."""
    cls = dataclasses.dataclass(frozen=True, kw_only=True)(cls)
    cls.__doc__ = f"{inspect.cleandoc(cls.__doc__ or '')}\n\n{options_text(cls)}"
    _REGISTRY[cls.name] = cls
    return cls


def methods() -> list[str]:
    """Registered method names."""
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    if name not in _REGISTRY:
        raise OptionError(f"unknown method {name!r}: expected one of {', '.join(methods())}")
    return _REGISTRY[name]


def options_of(name: str) -> dict[str, Option]:
    """The options method `name` declares."""
    return declared(method_class(name))


def _check_names(name: str, given: Mapping[str, Any]) -> None:
    known = options_of(name)
    unknown = [key for key in given if key not in known]
    if unknown:
        valid = ", ".join(known) if known else "none"
        raise OptionError(
            f"bad options for method {name!r}: unknown option {unknown[0]!r}; "
            f"its options are: {valid}"
        )


def create(name: str, **options: Any) -> Method:
    """An instance of the method registered as `name`, with its options checked."""
    cls = method_class(name)
    _check_names(name, options)
    try:
        return cls(**options)
    except OptionError as err:
        raise OptionError(f"{name}: {err}") from None


def parse_options(name: str, texts: Mapping[str, str]) -> dict[str, Any]:
    """Options of method `name` from `KEY=VALUE` text, each parsed as its declaration says."""
    _check_names(name, texts)
    known = options_of(name)
    try:
        return {key: known[key].parse(key, text) for key, text in texts.items()}
    except OptionError as err:
        raise OptionError(f"{name}: {err}") from None


def options_text(cls: type) -> str:
    """The options block of a docstring: one line per option with its default and range."""
    specs = declared(cls)
    if not specs:
        return "Options: none."
    lines = ["Options:"]
    for key, spec in specs.items():
        lines.append(f"    {key} = {spec.default_text()}: {spec.help} ({spec.describe()})")
    return "\n".join(lines)


def summary(name: str) -> str:
    """The first paragraph of a method's docstring: what it is and its paper."""
    paragraph = (method_class(name).__doc__ or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split())


def option_cell(key: str, spec: Option) -> str:
    """`key` (default; the other choices) for the README's table."""
    if spec.choices is not None:
        others = ", ".join(f"`{c}`" for c in spec.choices if c != spec.default)
        return f"`{key}` (`{spec.default}`; {others})"
    return f"`{key}` ({spec.default_text()})" if spec.default is not None else f"`{key}`"


def markdown_table() -> str:
    """The README's table of methods: name, what, passes per input, options with defaults."""
    lines = ["| name | what | passes per input | options (default) |", "|---|---|---|---|"]
    for name in methods():
        cls = method_class(name)
        cells = [option_cell(key, spec) for key, spec in declared(cls).items()]
        what = summary(name).replace("|", "\\|")
        lines.append(f"| `{name}` | {what} | {cls.passes} | {', '.join(cells) or '—'} |")
    return "\n".join(lines) + "\n"
