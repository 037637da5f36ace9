"""One row per input: written as a small JSON record when the input is done, gathered at the end
into manifest.parquet (manifest.jsonl where pyarrow is missing).

The per-input records are what makes a run resumable: a record is written (temporary name, then
rename) only after the input's map, so a record on disk means the input's outputs are complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from onnxcam.dataset.inputs import Item
from onnxcam.errors import OutputError
from onnxcam.files import write_atomic

OK, ERROR = "ok", "error"
#: Columns that change from run to run; compare manifests without them.
TIMING_COLUMNS = ("seconds",)
ROWS_DIR = "rows"


@dataclass(frozen=True)
class Row:
    """What happened to one input. target/score/probability/passes/map are None on errors."""

    input: str
    name: str
    status: str
    method: str
    layer: str
    target: int | None = None
    score: float | None = None  # the explained class's logit
    probability: float | None = None  # its softmax probability
    passes: int | None = None  # model runs spent on this input besides the first forward pass
    seconds: float = 0.0  # decoding + this input's share of the explain call + writing
    map: str | None = None  # relative to the output directory
    overlay: str | None = None
    error: str | None = None


def arrow_schema():
    import pyarrow as pa

    types = {"int | None": pa.int64(), "float | None": pa.float64(), "float": pa.float64()}
    return pa.schema([(f.name, types.get(f.type, pa.string())) for f in fields(Row)])


def row_path(out: Path, name: str) -> Path:
    return out / ROWS_DIR / f"{name}.json"


def write_row(out: Path, row: Row) -> None:
    path = row_path(out, row.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(row)).encode())


def read_row(out: Path, name: str) -> Row | None:
    """The record of a finished input, or None if there is none."""
    try:
        return Row(**json.loads(row_path(out, name).read_text()))
    except FileNotFoundError:
        return None


def is_done(out: Path, item: Item) -> bool:
    """True when the input was explained before and its map is on disk."""
    row = read_row(out, item.name)
    return row is not None and row.status == OK and (out / str(row.map)).is_file()


def write_manifest(out: Path, items: Sequence[Item]) -> tuple[Path, list[Row]]:
    """Gather the records of `items`, in dataset order, into manifest.parquet (or .jsonl)."""
    rows = [read_row(out, item.name) for item in items]
    missing = [item.path for item, row in zip(items, rows, strict=True) if row is None]
    if missing:
        raise OutputError(
            f"{len(missing)} inputs have no record in {out / ROWS_DIR}: {missing[:3]}"
        )
    records = [asdict(row) for row in rows]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        text = "".join(json.dumps(record) + "\n" for record in records)
        return write_atomic(out / "manifest.jsonl", text.encode()), rows
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(records, schema=arrow_schema()), sink)
    return write_atomic(out / "manifest.parquet", sink.getvalue().to_pybytes()), rows


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a manifest.parquet or manifest.jsonl as dicts."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()
