"""A seeded fuzzer: random small models, inputs, methods and options, byte- and
structure-mutated model files, through the API and the command line.

Each case must end in maps that are finite, in [0, 1] and of the input's size, or in an
OnnxcamError (the command line: exit 2 with one line on stderr); any other exception, or a
case that outlives its time, is a failure. Run it longer than the test suite does with

    python -m onnxcam.testing.fuzz --cases 5000 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import io
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnxcam.engine.methods import methods, options_of
from onnxcam.errors import OnnxcamError
from onnxcam.testing.models import Drawn, mutate_bytes, mutate_structure, random_model

KINDS = ("api", "api", "api", "api", "cli", "bytes", "structure")
#: Option values worth trying beside the declared ones: wrong kinds, non-finite, extreme.
ODD_VALUES = (np.nan, -1, 0, 10**9, "x", None, [], 1e30, True)
#: Options of the costlier methods kept small, so that a case stays a fraction of a second.
CHEAP = {
    "rise": {"n_masks": 48},
    "ss-cam": {"n_samples": 2},
    "is-cam": {"n_steps": 2},
    "sr-map": {"scales": (1.0, 0.5)},
}
CASE_SECONDS = 30


class TimedOutError(Exception):
    """A case that outlived CASE_SECONDS."""


@dataclass
class Outcome:
    seed: int
    kind: str
    what: str
    result: str  # "maps", "error" or "failure"
    detail: str = ""


def random_input(drawn: Drawn, rng: np.random.Generator) -> object:
    """Mostly a right batch; sometimes NaN, Inf, huge, the wrong rank, dtype or size."""
    n = int(rng.integers(1, 4))
    size = drawn.size
    if drawn.free and rng.random() < 0.5:
        size = tuple(int(s + rng.integers(-2, 5)) for s in size)
        size = tuple(max(1, s) for s in size)
    x = rng.standard_normal((n, drawn.channels, *size)).astype(drawn.dtype)
    odd = rng.random()
    if odd < 0.04:
        x.flat[0] = np.nan
    elif odd < 0.06:
        with np.errstate(over="ignore"):
            x = x * np.float32(1e38)
    elif odd < 0.08:
        x = x[0]
    elif odd < 0.1:
        x = x.astype(np.float64)
    elif odd < 0.11:
        x = x[:0]
    elif odd < 0.12:
        return x.tolist()
    return x


def random_options(method: str, rng: np.random.Generator) -> dict[str, object]:
    """Each declared option now and then, with its default, another valid value or an odd one;
    rarely an option the method does not have."""
    options: dict[str, object] = dict(CHEAP.get(method, {}))
    for key, spec in options_of(method).items():
        if rng.random() > 0.25:
            continue
        if rng.random() < 0.3:
            options[key] = ODD_VALUES[int(rng.integers(0, len(ODD_VALUES)))]
        elif spec.choices:
            options[key] = str(rng.choice(spec.choices))
        elif spec.kind == "int":
            low = int(spec.low if spec.low is not None else 0)
            options[key] = int(rng.integers(low, low + 5))
        elif spec.kind == "float":
            low = spec.low if spec.low is not None else -1.0
            high = spec.high if spec.high is not None else low + 3
            options[key] = float(rng.uniform(low, high))
        elif spec.kind == "bool":
            options[key] = bool(rng.random() < 0.5)
    if rng.random() < 0.03:
        options["no_such_option"] = 1
    return options


def check_maps(maps: np.ndarray, x: np.ndarray) -> str:
    """Why maps are not what every method promises ("" when they are)."""
    if maps.shape != (x.shape[0], *x.shape[2:]):
        return f"maps of shape {maps.shape} for inputs {x.shape}"
    if not np.isfinite(maps).all():
        return "maps with NaN or Inf"
    if maps.min() < 0 or maps.max() > 1 + 1e-5:
        return f"maps in [{maps.min()}, {maps.max()}]"
    return ""


def run_api(model: object, x: object, method: str, options: dict, layer: str) -> str:
    from onnxcam import Explainer

    explainer = Explainer(model, layer=layer, progress=False)
    result = explainer.explain(x, method=method, **options)
    return check_maps(result.maps, explainer.validate(x))


def run_cli(drawn: Drawn, x: object, method: str, options: dict, folder: Path) -> str:
    """The same case through `onnxcam explain` in this process: exit 0, or 2 with one line."""
    from onnxcam.cli import main

    model_path = folder / "model.onnx"
    model_path.write_bytes(drawn.model.SerializeToString())
    array = folder / "x.npy"
    np.save(array, np.asarray(x, dtype=object if isinstance(x, list) else None), allow_pickle=True)
    argv = ["explain", str(model_path), str(array), "--method", method, "--quiet"]
    for key, value in options.items():
        argv += ["--option", f"{key}={value}"]
    argv += ["--out", str(folder / "out")]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    text = err.getvalue()
    if code == 0:
        return ""
    if code == 2 and text.count("\n") == 1 and text.startswith("onnxcam: error: "):
        raise OnnxcamError(text.strip())
    return f"exit {code} with stderr {text!r}"


def run_case(seed: int, folder: Path) -> Outcome:
    rng = np.random.default_rng(seed)
    kind = KINDS[int(rng.integers(0, len(KINDS)))]
    drawn = random_model(rng)
    method = str(rng.choice(methods()))
    options = random_options(method, rng)
    x = random_input(drawn, rng)
    layer = "auto" if rng.random() < 0.9 else str(rng.choice(["nothing", "x", "w1", "relu2"]))
    what = f"{kind} {method} {options} layer={layer}"
    model: object = drawn.model
    if kind == "bytes":
        model = mutate_bytes(drawn.model.SerializeToString(), rng)
    elif kind == "structure":
        model = mutate_structure(drawn.model, rng)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "cli":
                problem = run_cli(drawn, x, method, options, folder)
            else:
                problem = run_api(model, x, method, options, layer)
    except OnnxcamError as err:
        return Outcome(seed, kind, what, "error", str(err).splitlines()[0][:200])
    except TimedOutError:
        return Outcome(seed, kind, what, "failure", f"still running after {CASE_SECONDS} s")
    except Exception:
        return Outcome(seed, kind, what, "failure", traceback.format_exc(limit=6))
    if problem:
        return Outcome(seed, kind, what, "failure", problem)
    return Outcome(seed, kind, what, "maps")


def _hang(signum: int, frame: object) -> None:
    raise TimedOutError


def fuzz(cases: int, seed: int = 0, seconds: float | None = None) -> list[Outcome]:
    """Run `cases` cases from `seed` (stopping early after `seconds`, if given)."""
    outcomes = []
    started = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _hang)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(cases):
                if seconds is not None and time.perf_counter() - started > seconds:
                    break
                folder = Path(tmp) / str(i)
                folder.mkdir()
                signal.alarm(CASE_SECONDS)
                try:
                    outcomes.append(run_case(seed * 1_000_003 + i, folder))
                finally:
                    signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    outcomes = fuzz(args.cases, args.seed)
    failures = [o for o in outcomes if o.result == "failure"]
    counts = {r: sum(o.result == r for o in outcomes) for r in ("maps", "error", "failure")}
    print(
        f"{len(outcomes)} cases: {counts['maps']} maps, {counts['error']} onnxcam errors, "
        f"{counts['failure']} failures"
    )
    for failure in failures[:20]:
        print(f"--- seed {failure.seed}: {failure.what}\n{failure.detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
