"""One Explainer per worker: decode and check inputs, explain them in groups, write the results.

The same Worker serves the local engine (in threads of one process) and the Ray engine (one per
actor), so both write the same files.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from onnxcam.dataset.inputs import Item
from onnxcam.dataset.manifest import ERROR, OK, Row, write_rows
from onnxcam.engine.explanation import Explanation
from onnxcam.errors import InputError, ModelError, OnnxcamError

MAPS_DIR = "maps"
#: The Job fields that decide the outputs (with the model's bytes): a resumed run must match.
OUTPUT_SETTINGS = (
    "method",
    "layer",
    "target",
    "options",
    "input_layout",
    "output",
    "output_kind",
    "preprocess",
    "size",
    "resize",
    "overlays",
)


@dataclass(frozen=True)
class Job:
    """What to explain and how: everything a worker needs to build its Explainer."""

    model: str
    out: str
    method: str = "score-cam"
    layer: str = "auto"
    target: str | int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    provider: str = "cpu"
    allow_fallback: bool = False
    batch_size: int | None = None
    threads: int | None = None
    input_layout: str | None = None
    output: str | None = None
    output_kind: str | None = None
    preprocess: str = "auto"
    size: str | None = None
    resize: str | None = None
    overlays: bool = False
    chunk: int = 8

    def settings(self) -> dict[str, Any]:
        """What decides the outputs: a rerun into the same folder must ask for the same."""
        try:
            digest = hashlib.sha1(Path(self.model).read_bytes()).hexdigest()
        except OSError as err:
            raise ModelError(f"cannot read the model {self.model}: {err.strerror}") from err
        return {"model_sha1": digest, **{key: asdict(self)[key] for key in OUTPUT_SETTINGS}}


@dataclass
class Loaded:
    """A decoded input, ready to be stacked: x is (C, *S) in the model's dtype."""

    item: Item
    x: np.ndarray
    picture: np.ndarray | None
    seconds: float


@dataclass
class Explained:
    """Inputs explained in one call, held in memory until they are written."""

    result: Explanation
    inputs: list[Loaded]
    rows: list[Row]


class Worker:
    """Holds one warm Explainer; load, explain and write are separate so an engine can overlap
    them (decoding the next group while this one runs)."""

    def __init__(self, job: Job) -> None:
        from onnxcam.api import RUN_OPTIONS, Explainer
        from onnxcam.engine.methods import create

        method = create(job.method, **job.options)  # unknown methods and bad options fail here
        self.job = job
        self.out = Path(job.out)
        run = {key: getattr(job, key) for key in RUN_OPTIONS}
        self.explainer = Explainer(job.model, progress=False, **run)
        self.format = self.explainer.input_format(job.preprocess, job.size, job.resize)
        self.layer = self.explainer.layer if method.uses_layer else None

    def row(self, item: Item, status: str, layer: str, **fields: Any) -> Row:
        """A manifest row for `item`, stamped with its file's size and modification time."""
        return Row(
            item.path,
            item.name,
            status,
            self.job.method,
            layer,
            item.size,
            item.mtime_ns,
            **fields,
        )

    def error_row(self, item: Item, err: Exception, seconds: float) -> Row:
        return self.row(item, ERROR, self.layer, seconds=seconds, error=str(err))

    def load(self, item: Item) -> Loaded | Row:
        """The input decoded, preprocessed and checked, or an error row saying what is wrong."""
        from onnxcam.io import load_inputs

        started = time.perf_counter()
        try:
            x, pictures, _ = load_inputs([item.path], self.format)
            if len(x) != 1:
                raise InputError(f"{item.path}: expected one input, got a batch of {len(x)}")
            x = self.explainer.validate(x.astype(self.explainer.input_dtype, copy=False))
        except (OnnxcamError, ValueError) as err:
            return self.error_row(item, err, time.perf_counter() - started)
        return Loaded(item, x[0], pictures[0], time.perf_counter() - started)

    def explain(self, group: list[Loaded]) -> list[Explained | Row]:
        """Explain inputs together, one call per input shape; when a call fails, each of its
        inputs is tried alone so that only the bad ones become error rows."""
        shapes: dict[tuple, list[Loaded]] = {}
        for loaded in group:
            shapes.setdefault(loaded.x.shape, []).append(loaded)
        outcomes: list[Explained | Row] = []
        for same in shapes.values():
            try:
                outcomes.append(self._explain_stacked(same))
            except (OnnxcamError, ValueError) as err:
                if len(same) == 1:
                    outcomes.append(self.error_row(same[0].item, err, same[0].seconds))
                else:
                    for loaded in same:
                        outcomes.extend(self.explain([loaded]))
        return outcomes

    def _explain_stacked(self, same: list[Loaded]) -> Explained:
        job = self.job
        started = time.perf_counter()
        result = self.explainer.explain(
            np.stack([loaded.x for loaded in same]), job.method, job.target, **job.options
        )
        share = (time.perf_counter() - started) / len(same)
        passes = result.metadata.get("passes_per_input", [None] * len(same))
        scores = result.logits[np.arange(len(same)), result.targets]
        rows = [
            self.row(
                loaded.item,
                OK,
                result.layer,
                target=int(result.targets[i]),
                score=float(scores[i]),
                probability=float(result.probabilities[i]),
                passes=passes[i],
                seconds=loaded.seconds + share,
            )
            for i, loaded in enumerate(same)
        ]
        return Explained(result, same, rows)

    def write(self, outcomes: list[Explained | Row]) -> list[Row]:
        """Write the maps (and overlays) of each call, then one record of all their rows: a row
        on disk means the input is done."""
        rows = []
        for outcome in outcomes:
            if isinstance(outcome, Row):
                written = [outcome]
            else:
                started = time.perf_counter()
                files = outcome.result.save_maps(
                    self.out / MAPS_DIR,
                    [loaded.picture for loaded in outcome.inputs],
                    [loaded.item.name for loaded in outcome.inputs],
                    overlays=self.job.overlays,
                )
                share = (time.perf_counter() - started) / len(files)
                written = [
                    replace(
                        row,
                        map=f"{MAPS_DIR}/{f['map']}",
                        overlay=f"{MAPS_DIR}/{f['overlay']}" if "overlay" in f else None,
                        seconds=row.seconds + share,
                    )
                    for row, f in zip(outcome.rows, files, strict=True)
                ]
            rows.extend(written)
        if rows:
            write_rows(self.out, rows)
        return rows

    def run(self, items: list[Item]) -> list[Row]:
        """Load, explain and write a group of inputs in turn (no overlap)."""
        loaded = [self.load(item) for item in items]
        errors = [entry for entry in loaded if isinstance(entry, Row)]
        good = [entry for entry in loaded if isinstance(entry, Loaded)]
        return self.write([*errors, *self.explain(good)])
