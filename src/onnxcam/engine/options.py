"""Options declared once: each field of an options dataclass says its kind, default, range or
choices and meaning, and everything else comes from that declaration: validation (a bad value
names the option, what it takes and what came), parsing of `KEY=VALUE` text from the command
line, the `onnxcam methods` listing and the README's table of methods.

    @dataclass(frozen=True, kw_only=True)
    class Rise(Options):
        n_masks: int = integer(4000, "random masks", low=1)
        p: float = number(0.5, "probability that a cell is kept", low=0, low_open=True, high=1)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxcam.errors import ArgumentError

OPTION = "onnxcam.option"
NONE_WORDS = ("none", "null")
TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")


class OptionError(ArgumentError):
    """An option that does not exist, or a value it does not take."""


@dataclass(frozen=True)
class Option:
    """What one option takes. kind: int, float, bool, str, names (a list of strings), numbers
    (a number or one per channel), fractions (numbers in (0, 1]). Bounds are inclusive unless
    marked open; `what` names a choice in errors ("Score-CAM profile")."""

    default: Any
    help: str
    kind: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    what: str | None = None
    most: float | None = None  # a cap on the cost (masks, samples), with its own message

    def describe(self) -> str:
        """What the option takes, as the errors and the listing say it."""
        if self.choices is not None:
            text = "one of " + ", ".join(self.choices)
        elif self.kind == "int" and self.low == 1 and self.high is None:
            text = "a positive integer"
        elif self.kind in ("int", "float"):
            text = ("an integer" if self.kind == "int" else "a number") + self._range()
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "names":
            text = "a non-empty list of names"
        elif self.kind == "numbers":
            text = "a finite number or one per channel"
        elif self.kind == "fractions":
            text = "fractions in (0, 1]"
        else:
            text = "a string"
        return text + (" or None" if self.optional else "")

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f" in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f" {'>' if self.low_open else '>='} {_number(self.low)}"
        if self.high is not None:
            return f" {'<' if self.high_open else '<='} {_number(self.high)}"
        return ""

    def check(self, name: str, value: Any) -> Any:
        """The value in its canonical form (int, float, tuple), or an OptionError."""
        if value is None and self.optional:
            return None
        checked = self._canonical(value)
        if checked is not None and self.most is not None and checked > self.most:
            raise OptionError(f"{name} must be at most {self.most}, got {value!r}")
        if checked is None:
            if self.choices is not None:
                what = self.what or name
                raise OptionError(f"unknown {what} {value!r}: expected {self.describe()}")
            raise OptionError(f"{name} must be {self.describe()}, got {value!r}")
        return checked

    def _canonical(self, value: Any) -> Any:
        """The canonical value, or None where `value` is not one this option takes."""
        if self.kind == "bool":
            return bool(value) if isinstance(value, (bool, np.bool_)) else None
        if self.kind == "str":
            ok = isinstance(value, str) and (self.choices is None or value in self.choices)
            return value if ok else None
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if self.kind == "names":
            if isinstance(value, str) or not isinstance(value, Sequence) or not value:
                return None
            return tuple(value) if all(isinstance(v, str) and v for v in value) else None
        if self.kind in ("numbers", "fractions"):
            values = _numbers(value) if isinstance(value, Sequence) else None
            if self.kind == "numbers":
                return values if values else _scalar(value, False)
            single = _scalar(value, False)
            values = values or ((single,) if single is not None else None)
            ok = values and all(0 < v <= 1 for v in values)
            return values if ok else None
        number = _scalar(value, self.kind == "int")
        return number if number is not None and self._within(number) else None

    def _within(self, v: float) -> bool:
        low_ok = self.low is None or (v > self.low if self.low_open else v >= self.low)
        high_ok = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return low_ok and high_ok

    def parse(self, name: str, text: str) -> Any:
        """A value from command-line text (`KEY=VALUE`), checked."""
        words = text.strip()
        if self.optional and words.lower() in NONE_WORDS:
            return None
        if self.kind == "bool":
            lowered = words.lower()
            value: Any = (
                True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else text
            )
        elif self.kind in ("int", "float"):
            value = _parse_number(words, self.kind == "int")
        elif self.kind in ("names", "numbers", "fractions"):
            value = _parse_list(words, self.kind != "names")
        else:
            value = text
        return self.check(name, text if value is None else value)

    def default_text(self) -> str:
        value = self.default
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, tuple):
            return ",".join(_number(v) if isinstance(v, float) else str(v) for v in value)
        return _number(value) if isinstance(value, float) else str(value)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _scalar(value: Any, integer: bool) -> Any:
    """A finite int (or float), or None; bools are not numbers here."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if integer:
        return int(value) if isinstance(value, (int, np.integer)) else None
    if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value):
        return float(value)
    return None


def _numbers(values: Sequence) -> tuple[float, ...] | None:
    numbers = tuple(_scalar(v, False) for v in values)
    return numbers if numbers and all(n is not None for n in numbers) else None


def _parse_number(text: str, integer: bool) -> Any:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return None


def _parse_list(text: str, numeric: bool) -> Any:
    """A JSON list, or comma-separated items; numbers where `numeric`."""
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None
    items = [item.strip() for item in text.split(",")]
    if not numeric:
        return items
    numbers = [_parse_number(item, False) for item in items]
    if any(n is None for n in numbers):
        return None
    return numbers[0] if len(numbers) == 1 else numbers


def _field(default: Any, spec: Option) -> Any:
    return dataclasses.field(default=default, metadata={OPTION: spec})


def integer(
    default: int | None,
    help: str,
    low: int | None = None,
    high: int | None = None,
    optional: bool | None = None,
    most: int | None = None,
) -> Any:
    """An integer option; None is a valid value (meaning "not set") where `optional`, which
    defaults to whether the default is None. `most` caps a count that sets the cost."""
    allow_none = default is None if optional is None else optional
    spec = Option(default, help, "int", low=low, high=high, optional=allow_none, most=most)
    return _field(default, spec)


def number(
    default: float | None,
    help: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A finite real option, within optional bounds."""
    spec = Option(
        default, help, "float", None, low, high, low_open, high_open, optional=default is None
    )
    return _field(default, spec)


def choice(default: str, choices: Sequence[str], help: str, what: str | None = None) -> Any:
    """One of a fixed set of words."""
    return _field(default, Option(default, help, "str", tuple(choices), what=what))


def flag(default: bool, help: str) -> Any:
    return _field(default, Option(default, help, "bool"))


def names(help: str) -> Any:
    """A non-empty list of names, or None (not set)."""
    return _field(None, Option(None, help, "names", optional=True))


def numbers(default: float | None, help: str) -> Any:
    """A number, or one number per input channel; None is valid (not set) if the default."""
    return _field(default, Option(default, help, "numbers", optional=default is None))


def fractions(default: tuple[float, ...], help: str) -> Any:
    return _field(default, Option(default, help, "fractions"))


def seed(default: int = 0) -> Any:
    """A seed for NumPy's random generator: an integer >= 0."""
    return integer(default, "random seed: the same seed gives the same result", low=0)


def reuse(owner: type, name: str) -> Any:
    """A field declared as `owner`'s field `name` is: one declaration serving two classes."""
    spec = declared(owner)[name]
    return _field(spec.default, spec)


def declared(cls: type) -> dict[str, Option]:
    """The options an options dataclass declares, in field order."""
    return {f.name: f.metadata[OPTION] for f in dataclasses.fields(cls) if OPTION in f.metadata}


class Options:
    """Base of option dataclasses: every declared field is checked (and made canonical) after
    construction, then `check` states the rules between options."""

    def __post_init__(self) -> None:
        for field_name, spec in declared(type(self)).items():
            value = spec.check(field_name, getattr(self, field_name))
            object.__setattr__(self, field_name, value)
        self.check()

    def check(self) -> None:
        """Rules that relate several options (overridden where there are some)."""


def check_count(name: str, value: Any, optional: bool = False) -> int | None:
    """A count given outside an options dataclass (a metric's step), checked the same way."""
    return Option(None, "", "int", low=1, optional=optional).check(name, value)
