"""One row per input: written with the rows of its group as a small JSON-lines record once the
group is done, gathered at the end into manifest.parquet (manifest.jsonl where pyarrow is
missing).

The records are what makes a run resumable: a group's record is written (temporary name, then
rename) only after its inputs' maps, so a row on disk means that input's outputs are complete.
One file a group rather than one an input: creating and renaming a file costs as much as
decoding a small image.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from onnxcam.dataset.inputs import Item
from onnxcam.errors import OutputError
from onnxcam.io import json_text, write_atomic

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
    layer: str | None  # None for methods that use no layer (RISE, occlusion, LRP, SR map)
    input_bytes: int = -1  # the input file's size and modification time when it was explained
    input_mtime_ns: int = -1
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

    types = {
        "int | None": pa.int64(),
        "int": pa.int64(),
        "float | None": pa.float64(),
        "float": pa.float64(),
    }
    return pa.schema([(f.name, types.get(f.type, pa.string())) for f in fields(Row)])


def write_rows(out: Path, rows: Sequence[Row]) -> Path:
    """One record file for a group's rows, under a name no other group or run takes."""
    path = out / ROWS_DIR / f"{uuid.uuid4().hex}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, "".join(json_text(asdict(row)) + "\n" for row in rows).encode())


def read_rows(out: Path) -> dict[str, Row]:
    """Every input's latest row by name: an input tried again (it failed, or its map went
    missing) has a row in a later record, which wins."""
    records = sorted((out / ROWS_DIR).glob("*.jsonl"), key=lambda path: path.stat().st_mtime_ns)
    rows = {}
    for path in records:
        for line in path.read_text().splitlines():
            row = Row(**json.loads(line))
            rows[row.name] = row
    return rows


def is_done(out: Path, row: Row | None, item: Item) -> bool:
    """True when an input's row says that this very file (same path, size and modification
    time) was explained and its map is on disk; anything else is explained again."""
    same_file = row is not None and (row.input, row.input_bytes, row.input_mtime_ns) == (
        item.path,
        item.size,
        item.mtime_ns,
    )
    return same_file and row.status == OK and (out / str(row.map)).is_file()


def write_manifest(out: Path, items: Sequence[Item]) -> tuple[Path, list[Row]]:
    """Gather the rows of `items`, in dataset order, into manifest.parquet (or .jsonl)."""
    latest = read_rows(out)
    rows = [latest.get(item.name) for item in items]
    missing = [item.path for item, row in zip(items, rows, strict=True) if row is None]
    if missing:
        raise OutputError(
            f"{len(missing)} inputs have no row in the records of {out / ROWS_DIR}: {missing[:3]}"
        )
    records = [asdict(row) for row in rows]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        text = "".join(json_text(record) + "\n" for record in records)
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
