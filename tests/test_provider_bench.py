"""`onnxcam bench`: rows per provider and batch size, skips, map differences, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from onnxcam.benchmark.providers import add_differences, skip_reason
from onnxcam.cli import main
from onnxcam.engine.ort import onnxruntime as ort

NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here")
def test_missing_provider_is_skipped_with_its_reason():
    assert skip_reason("cpu") is None
    assert "CUDAExecutionProvider is not in this ONNX Runtime build" in skip_reason("cuda")
    assert skip_reason("cpu", "fp16") == "fp16 is measured on cuda only"
    with pytest.raises(ValueError, match="unknown provider 'tpu'"):
        skip_reason("tpu")


def test_differences_are_taken_against_cpu_at_the_first_batch_size():
    ref = {("score-cam", 1): np.zeros((2, 4, 4), np.float32)}
    got = {
        ("score-cam", 1): np.full((2, 4, 4), 0.25, np.float32),
        ("score-cam", 8): np.eye(4, dtype=np.float32)[None].repeat(2, 0) * 0.5,
    }
    rows = [
        {"bench": "explain", "status": "ok", "method": "score-cam", "batch_size": b} for b in (1, 8)
    ]
    add_differences(rows, got, ref, batch=1)
    assert [r["max_abs_diff_vs_cpu"] for r in rows] == [0.25, 0.5]
    add_differences(rows, got, {}, batch=1)
    assert rows[0]["max_abs_diff_vs_cpu"] is None


def test_cli_writes_rows_table_and_plot(tmp_path, resnet_onnx, capsys):
    out = tmp_path / "bench"
    code = main(
        [
            "bench",
            str(resnet_onnx),
            "--providers",
            "cpu,cuda",
            "--batch-sizes",
            "1,4",
            "--methods",
            "score-cam,recipro-cam",
            "--rounds",
            "3",
            "--fp16",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    forward = {r["batch_size"]: r for r in rows if r["bench"] == "forward"}
    assert set(forward) == {1, 4} and all(r["provider"] == "cpu" for r in forward.values())
    for r in forward.values():
        assert 0 < r["latency_p50_ms"] <= r["latency_p95_ms"]
        assert r["images_per_s"] > 0 and r["peak_host_mib"] > 10
    explain = [r for r in rows if r["bench"] == "explain"]
    assert {(r["method"], r["batch_size"]) for r in explain} == {
        (m, b) for m in ("score-cam", "recipro-cam") for b in (1, 4)
    }
    assert all(r["seconds_per_image"] > 0 for r in explain)
    # the CPU at batch 1 is the reference itself; batching does not change the maps
    assert all(r["max_abs_diff_vs_cpu"] <= 1e-6 for r in explain)
    assert [r["max_abs_diff_vs_cpu"] for r in explain if r["batch_size"] == 1] == [0.0, 0.0]
    skipped = {(r["provider"], r["precision"]) for r in rows if r["status"] == "skipped"}
    assert ("cpu", "fp16") in skipped
    if NO_CUDA:
        assert ("cuda", "fp32") in skipped and ("cuda", "fp16") in skipped
    table = (out / "bench.md").read_text()
    assert table.count("| cpu | fp32 |") == 6 and "- skipped: cpu fp16" in table
    assert table in capsys.readouterr().out
    with Image.open(out / "bench.png") as plot:
        assert plot.format == "PNG" and plot.size == (1000, 400)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--providers", "cpu,tpu"], "unknown provider 'tpu'"),
        (["--batch-sizes", "1,x"], "--batch-sizes expects comma-separated integers"),
        (["--methods", "grad-kam"], "unknown method 'grad-kam'"),
    ],
)
def test_bad_options_are_errors(tmp_path, resnet_onnx, capsys, extra, message):
    assert main(["bench", str(resnet_onnx), "--out", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err
