"""explain_dataset: list the inputs, skip those done before, run an engine, write the manifest."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from onnxcam.dataset.inputs import dataset_items
from onnxcam.dataset.manifest import OK, ROWS_DIR, is_done, read_rows, write_manifest
from onnxcam.dataset.worker import Job
from onnxcam.errors import ArgumentError, OutputError
from onnxcam.io import json_text, prepare_dir, write_atomic

ENGINES = ("local", "ray")
SETTINGS_FILE = "run.json"


@dataclass(frozen=True)
class Summary:
    """How a run went: inputs in the dataset, done before it, ok and failed ones overall, and
    each failed input with its error."""

    total: int
    skipped: int
    ok: int
    errors: int
    seconds: float
    manifest: Path
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, error)

    def line(self) -> str:
        ran = self.total - self.skipped
        rate = ran / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.total} inputs: {self.ok} ok, {self.errors} errors "
            f"({self.skipped} done before this run); {ran} in {self.seconds:.1f} s "
            f"({rate:.2f} inputs/s); manifest {self.manifest}"
        )

    def failure_lines(self, shown: int = 5) -> list[str]:
        """The first `shown` failed inputs, each with its error, then how many more failed."""
        lines = [f"failed: {path}: {error}" for path, error in self.failed[:shown]]
        if len(self.failed) > shown:
            lines.append(
                f"... and {len(self.failed) - shown} more failed inputs (status error in "
                f"{self.manifest})"
            )
        return lines


def check_settings(out: Path, job: Job) -> None:
    """Record what the run computes in out/run.json; refuse to resume a different run there
    (one that finished at least one input: a run that failed before is simply replaced)."""
    settings = json.loads(json_text(job.settings()))  # as it reads back from the file
    path = out / SETTINGS_FILE
    if path.exists() and any((out / ROWS_DIR).glob("*.jsonl")):
        before = json.loads(path.read_text())
        changed = sorted(
            k for k in settings.keys() | before.keys() if settings.get(k) != before.get(k)
        )
        if changed:
            raise OutputError(
                f"{out} holds the results of a run with other settings (changed: "
                f"{', '.join(changed)}): expected the same settings to resume, or a new "
                "--out folder"
            )
    write_atomic(path, json_text(settings, indent=2, sort_keys=True).encode())


def remove_partial_files(out: Path) -> None:
    """Temporary files left by a run that was killed while writing."""
    for tmp in out.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def explain_dataset(
    job: Job,
    inputs: Sequence[str],
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> Summary:
    """Explain every input of a folder, glob or list file into job.out; inputs already done there
    (by an earlier, possibly killed, run with the same settings) are skipped."""
    if engine not in ENGINES:
        raise ArgumentError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    for name, value in (("chunk", job.chunk), ("workers", workers), ("threads", job.threads)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ArgumentError(f"{name} must be >= 1, got {value!r}")
    out = prepare_dir(job.out).resolve()
    job = replace(job, model=str(Path(job.model).resolve()), out=str(out))  # for Ray's workers
    items = dataset_items(inputs)
    check_settings(out, job)
    remove_partial_files(out)
    done = read_rows(out)
    pending = [item for item in items if not is_done(out, done.get(item.name), item)]
    started = time.perf_counter()
    if engine == "local":
        from onnxcam.dataset.local import explain_local

        groups = explain_local(job, pending, workers) if pending else iter(())
    else:
        from onnxcam.dataset.ray_engine import explain_ray

        groups = explain_ray(job, pending, workers, address) if pending else iter(())
    with tqdm(
        total=len(items), initial=len(items) - len(pending), unit="input", disable=not progress
    ) as bar:
        for rows in groups:
            bar.update(len(rows))
    seconds = time.perf_counter() - started
    manifest, rows = write_manifest(out, items)
    ok = sum(row.status == OK for row in rows)
    failed = [(row.input, row.error or "") for row in rows if row.status != OK]
    return Summary(
        len(items), len(items) - len(pending), ok, len(rows) - ok, seconds, manifest, failed
    )
