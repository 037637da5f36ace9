"""explain-dataset on one machine: inputs found, maps equal to Explainer's, error rows, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnxcam import Explainer
from onnxcam.cli import main
from onnxcam.dataset import Job, explain_dataset, read_manifest
from onnxcam.dataset.inputs import dataset_items
from onnxcam.dataset.manifest import TIMING_COLUMNS
from onnxcam.errors import InputError, OutputError
from onnxcam.io import PRESETS, load_image

ARRAYS = [f"arrays/x{i:02d}" for i in range(5)]


def write_arrays(folder: Path, n: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        np.save(folder / f"x{i:02d}.npy", rng.standard_normal((3, 32, 32)).astype(np.float32))


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Five arrays in a sub-folder, two images, a corrupt JPEG, a wrong-size array, a text file."""
    root = tmp_path / "data"
    write_arrays(root / "arrays", 5)
    rng = np.random.default_rng(1)
    for name in ("b", "a"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            root / f"{name}.png"
        )
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    np.save(root / "small.npy", np.zeros((3, 16, 16), np.float32))
    (root / "notes.md").write_text("not an input")
    return root


def strip_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def test_items_from_folder_glob_and_list(dataset, tmp_path):
    names = [item.name for item in dataset_items([str(dataset)])]
    assert names == ["a", *ARRAYS, "b", "broken", "small"]  # sorted, .md left out
    globbed = dataset_items([str(dataset / "arrays" / "*.npy")])
    assert [item.name for item in globbed] == [f"x{i:02d}" for i in range(5)]
    listing = tmp_path / "list.txt"
    listing.write_text("# two inputs\ndata/b.png\n\ndata/arrays/x03.npy\ndata/b.png\n")
    listed = dataset_items([str(listing)])
    assert [Path(item.path) for item in listed] == [dataset / "b.png", dataset / "arrays/x03.npy"]
    assert [item.name for item in listed] == ["b", "arrays/x03"]
    (dataset / "arrays" / "x00.png").write_bytes(b"")
    clash = dataset_items([str(dataset / "arrays" / "x00.*")])
    assert [item.name for item in clash] == ["x00", "x00_1"]
    with pytest.raises(InputError, match="no inputs found"):
        dataset_items([str(dataset / "*.tif")])
    with pytest.raises(InputError, match=r"missing: not found \(expected a folder, a glob"):
        dataset_items([str(tmp_path / "missing")])


def test_local_maps_equal_explainer_and_bad_inputs_become_rows(resnet_onnx, dataset, tmp_path):
    out = tmp_path / "out"
    job = Job(str(resnet_onnx), str(out), layer="layer2", chunk=3, overlays=True)
    summary = explain_dataset(job, [str(dataset)], progress=False)
    assert (summary.total, summary.ok, summary.errors, summary.skipped) == (9, 7, 2, 0)
    rows = read_manifest(summary.manifest)
    assert summary.manifest.name == "manifest.parquet"
    assert [row["name"] for row in rows] == ["a", *ARRAYS, "b", "broken", "small"]
    by_name = {row["name"]: row for row in rows}
    assert (
        by_name["broken"]["status"] == "error" and "cannot read image" in by_name["broken"]["error"]
    )
    assert "expected input shape" in by_name["small"]["error"]
    assert "got (1, 3, 16, 16)" in by_name["small"]["error"]
    assert by_name["small"]["map"] is None and by_name["small"]["target"] is None

    explainer = Explainer(resnet_onnx, layer="layer2", progress=False)
    # the model records no preprocessing: images are fitted (letterboxed), not cropped
    fitted = [
        load_image(dataset / f"{n}.png", (32, 32), PRESETS["imagenet"], 3, "fit") for n in "ab"
    ]
    pictures = fitted
    x = np.stack([pictures[0][0], *(np.load(dataset / f"{n}.npy") for n in ARRAYS), pictures[1][0]])
    for i, name in enumerate(["a", *ARRAYS, "b"]):
        alone = explainer.explain(x[i : i + 1])
        row = by_name[name]
        assert row["status"] == "ok" and row["method"] == "score-cam" and row["layer"] == "layer2"
        assert row["target"] == alone.targets[0]
        assert row["score"] == pytest.approx(alone.logits[0, alone.targets[0]], abs=1e-5)
        assert row["probability"] == pytest.approx(alone.probabilities[0], abs=1e-6)
        assert row["passes"] == alone.metadata["passes_run"]
        assert np.abs(np.load(out / row["map"]) - alone.maps[0]).max() <= 1e-6
        overlay = np.asarray(Image.open(out / row["overlay"]))
        assert overlay.shape == (32, 32, 3)
    assert not list(out.rglob("*.tmp"))


def test_rerun_skips_done_inputs_and_retries_errors(resnet_onnx, dataset, tmp_path):
    out = tmp_path / "out"
    job = Job(str(resnet_onnx), str(out), method="eigen-cam")
    explain_dataset(job, [str(dataset)], progress=False)
    stamp = (out / "maps/a.npy").stat().st_mtime_ns
    np.save(dataset / "small.npy", np.zeros((3, 32, 32), np.float32))  # fixed by the user
    again = explain_dataset(job, [str(dataset)], progress=False)
    assert (again.skipped, again.ok, again.errors) == (7, 8, 1)
    assert (out / "maps/a.npy").stat().st_mtime_ns == stamp
    assert (out / "maps/small.npy").is_file()
    other = Job(str(resnet_onnx), str(out), method="score-cam")
    with pytest.raises(OutputError, match=r"other settings \(changed: method\)"):
        explain_dataset(other, [str(dataset)], progress=False)


def test_jsonl_manifest_without_pyarrow(resnet_onnx, dataset, tmp_path, monkeypatch):
    parquet = explain_dataset(
        Job(str(resnet_onnx), str(tmp_path / "p"), method="eigen-cam"),
        [str(dataset)],
        progress=False,
    )
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    jsonl = explain_dataset(
        Job(str(resnet_onnx), str(tmp_path / "j"), method="eigen-cam"),
        [str(dataset)],
        progress=False,
    )
    assert jsonl.manifest.name == "manifest.jsonl"
    monkeypatch.undo()
    assert strip_timing(read_manifest(jsonl.manifest)) == strip_timing(
        read_manifest(parquet.manifest)
    )


def test_local_workers_explain_groups_at_once_with_the_same_outputs(
    resnet_onnx, tmp_path, monkeypatch
):
    from onnxcam.dataset import local
    from onnxcam.dataset.worker import Worker

    write_arrays(tmp_path / "in", 12, seed=5)
    running, most, threads = [0], [0], []
    lock = threading.Lock()
    explain, init = Worker.explain, Worker.__init__

    def counted(self, group):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # long enough for another group to start
        try:
            return explain(self, group)
        finally:
            with lock:
                running[0] -= 1

    def recorded(self, job):
        threads.append(job.threads)
        init(self, job)

    monkeypatch.setattr(Worker, "explain", counted)
    monkeypatch.setattr(Worker, "__init__", recorded)
    monkeypatch.setattr(local, "available_cores", lambda: 4)
    outputs = {}
    for workers in (1, 3):
        most[0] = 0
        job = Job(str(resnet_onnx), str(tmp_path / f"w{workers}"), method="eigen-cam", chunk=2)
        summary = explain_dataset(job, [str(tmp_path / "in")], workers=workers, progress=False)
        assert summary.ok == 12 and most[0] == workers
        outputs[workers] = strip_timing(read_manifest(summary.manifest))
    assert threads == [4, 1]  # the cores shared out among the groups explained at once
    assert outputs[1] == outputs[3]
    for row in outputs[1]:
        one, three = (np.load(tmp_path / w / row["map"]) for w in ("w1", "w3"))
        assert np.array_equal(one, three)
    with pytest.raises(ValueError, match="workers must be >= 1, got -1"):
        explain_dataset(job, [str(tmp_path / "in")], workers=-1, progress=False)


def test_local_write_error_stops_the_run_and_keeps_what_was_written(
    resnet_onnx, tmp_path, monkeypatch
):
    from onnxcam.dataset.worker import Worker

    write_arrays(tmp_path / "in", 40, seed=6)
    explained, writes = [], []
    explain, write = Worker.explain, Worker.write

    def counted(self, group):
        explained.append(len(group))
        return explain(self, group)

    def second_fails(self, outcomes):
        writes.append(len(outcomes))
        if len(writes) > 1:
            raise OutputError("disk full")
        return write(self, outcomes)

    monkeypatch.setattr(Worker, "explain", counted)
    monkeypatch.setattr(Worker, "write", second_fails)
    out = tmp_path / "out"
    job = Job(str(resnet_onnx), str(out), method="eigen-cam", chunk=1)
    with pytest.raises(OutputError, match="disk full"):
        explain_dataset(job, [str(tmp_path / "in")], workers=2, progress=False)
    assert len(explained) < 10  # the run stopped at the failure, not at the end of the data
    assert len(list(out.glob("rows/*.jsonl"))) == 1 and not (out / "manifest.parquet").exists()
    monkeypatch.undo()
    resumed = explain_dataset(job, [str(tmp_path / "in")], workers=2, progress=False)
    assert (resumed.skipped, resumed.ok) == (1, 40)


def test_cli_summary_and_strict(resnet_onnx, dataset, tmp_path, capsys):
    args = ["explain-dataset", str(resnet_onnx), str(dataset), "--method", "eigen-cam", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "explain-dataset: 9 inputs: 7 ok, 2 errors (0 done before this run)" in captured.out
    assert [line.split(": ")[0] for line in captured.err.splitlines()] == ["failed", "failed"]
    assert main([*args, "--out", str(tmp_path / "o"), "--strict"]) == 1
    assert "7 ok, 2 errors (7 done before this run)" in capsys.readouterr().out  # errors retried
    assert main([*args, "--out", str(tmp_path / "x"), "--option", "sign=bad"]) == 2
    assert "unknown eigen-cam sign 'bad': expected one of mean" in capsys.readouterr().err


def test_cli_setup_errors_stop_the_run_and_leave_no_settings_behind(
    resnet_onnx, dataset, tmp_path, capsys
):
    out = str(tmp_path / "o")
    args = ["explain-dataset", str(resnet_onnx), str(dataset), "--quiet", "--out", out]
    assert main([*args, "--layer", "layer9"]) == 2
    assert "layer9" in capsys.readouterr().err
    assert not list((tmp_path / "o").rglob("*.npy"))
    assert main([*args, "--layer", "layer2", "--method", "eigen-cam"]) == 0  # same folder
    missing = ["explain-dataset", str(tmp_path / "none.onnx"), str(dataset), "--out", out]
    assert main(missing) == 2
    assert "cannot read the model" in capsys.readouterr().err


def run_cli(model: Path, inputs: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "onnxcam.cli", "explain-dataset", str(model), str(inputs)]
    options = ["--method", "rise", "--option", "n_masks=400", "--chunk", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.Popen(
        [*command, *options, "--png", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigkill_then_rerun_gives_the_uninterrupted_outputs(resnet_onnx, tmp_path):
    inputs = tmp_path / "inputs"
    write_arrays(inputs, 24, seed=3)
    (inputs / "zz_corrupt.npy").write_bytes(b"\x93NUMPY broken")
    killed = run_cli(resnet_onnx, inputs, tmp_path / "killed")
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "killed").glob("rows/*.jsonl"))) < 3:  # one input a record
        assert killed.poll() is None, killed.communicate()[1].decode()
        assert time.monotonic() < deadline, "no records after 120 s"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    done_before = len(list((tmp_path / "killed").glob("rows/*.jsonl")))
    assert 3 <= done_before < 25, "the run ended before it could be killed"
    assert not (tmp_path / "killed/manifest.parquet").exists()

    resumed = run_cli(resnet_onnx, inputs, tmp_path / "killed")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr.decode()
    assert f"({done_before} done before this run)" in stdout.decode()
    whole = run_cli(resnet_onnx, inputs, tmp_path / "whole")
    stdout, stderr = whole.communicate(timeout=300)
    assert whole.returncode == 0, stderr.decode()

    def files(root: Path) -> list[str]:
        """Every file but the records, whose names are drawn per group."""
        paths = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
        return sorted(str(p) for p in paths if p.parts[0] != "rows")

    assert files(tmp_path / "killed") == files(tmp_path / "whole")
    rows = read_manifest(tmp_path / "killed/manifest.parquet")
    assert strip_timing(rows) == strip_timing(read_manifest(tmp_path / "whole/manifest.parquet"))
    assert [row["status"] for row in rows] == ["ok"] * 24 + ["error"]
    for row in rows[:24]:
        a, b = (np.load(tmp_path / run / row["map"]) for run in ("killed", "whole"))
        assert np.abs(a - b).max() <= 1e-6


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance with two CPUs, shut down after this module's Ray tests."""
    ray = pytest.importorskip("ray", reason="the ray engine needs onnxcam[ray]")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_outputs_equal_local(ray_instance, resnet_onnx, dataset, tmp_path):
    def run(engine: str):
        job = Job(str(resnet_onnx), str(tmp_path / engine), layer="layer2", chunk=2, overlays=True)
        return explain_dataset(job, [str(dataset)], engine=engine, workers=2, progress=False)

    local, distributed = run("local"), run("ray")
    assert (distributed.ok, distributed.errors) == (local.ok, local.errors) == (7, 2)
    rows = read_manifest(distributed.manifest)
    assert strip_timing(rows) == strip_timing(read_manifest(local.manifest))
    for row in rows:
        if row["status"] == "ok":
            maps = [np.load(tmp_path / run / row["map"]) for run in ("local", "ray")]
            assert np.abs(maps[0] - maps[1]).max() <= 1e-6
            pngs = [(tmp_path / run / row["overlay"]).read_bytes() for run in ("local", "ray")]
            assert pngs[0] == pngs[1]
    assert ray_instance.is_initialized()  # the engine leaves an instance it did not start


def test_hostile_files_become_error_rows_and_the_run_goes_on(resnet_onnx, tmp_path):
    root = tmp_path / "hostile"
    write_arrays(root, 2)
    Image.new("RGB", (100_000, 1)).save(root / "strip.png")
    (root / "header.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4', 'fortra")
    (root / "jpeg.npy").write_bytes(b"\xff\xd8\xff\xe0 a JPEG")
    job = Job(str(resnet_onnx), str(tmp_path / "out"), method="eigen-cam")
    summary = explain_dataset(job, [str(root)], progress=False)
    rows = {row["name"]: row for row in read_manifest(summary.manifest)}
    assert rows["strip"]["status"] == "ok"  # cropped first: explained like any photo
    assert rows["header"]["status"] == "error" and "cannot read array" in rows["header"]["error"]
    assert rows["jpeg"]["status"] == "error" and "expected a .npy" in rows["jpeg"]["error"]
    assert summary.ok == 3 and summary.errors == 2


def test_a_changed_or_different_file_is_explained_again(resnet_onnx, tmp_path):
    data = tmp_path / "data"
    write_arrays(data, 3)
    job = Job(str(resnet_onnx), str(tmp_path / "out"), method="eigen-cam")
    assert explain_dataset(job, [str(data)], progress=False).skipped == 0
    assert explain_dataset(job, [str(data)], progress=False).skipped == 3
    x = np.load(data / "x01.npy")
    np.save(data / "x01.npy", x[::-1].copy())  # new content, new modification time
    os.utime(data / "x01.npy", ns=(1, 1))
    summary = explain_dataset(job, [str(data)], progress=False)
    assert summary.skipped == 2  # x01 is another file now: explained again
    other = tmp_path / "other"  # another folder whose inputs have the same names
    write_arrays(other, 3, seed=9)
    summary = explain_dataset(job, [str(other)], progress=False)
    assert summary.skipped == 0
    rows = read_manifest(summary.manifest)
    assert {Path(row["input"]).parent for row in rows} == {other.resolve()}


def test_cli_names_each_failed_input_and_its_error(resnet_onnx, dataset, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["explain-dataset", str(resnet_onnx), str(dataset), "--quiet", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    failed = sorted(captured.err.splitlines())
    assert len(failed) == 2
    assert failed[0].startswith(f"failed: {dataset / 'broken.jpg'}: cannot read image")
    assert (
        failed[1].startswith(f"failed: {dataset / 'small.npy'}: ")
        and "got (1, 3, 16, 16)" in failed[1]
    )
    assert captured.out.strip().endswith(f"manifest {out / 'manifest.parquet'}")


def test_failures_beyond_the_first_few_are_counted():
    from onnxcam.dataset import Summary

    failed = [(f"in/{i}.png", f"error {i}") for i in range(7)]
    lines = Summary(9, 0, 2, 7, 1.0, Path("o/manifest.jsonl"), failed).failure_lines()
    assert lines[:5] == [f"failed: in/{i}.png: error {i}" for i in range(5)]
    assert lines[5] == "... and 2 more failed inputs (status error in o/manifest.jsonl)"
    assert len(lines) == 6
