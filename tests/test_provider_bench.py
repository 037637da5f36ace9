"""`onnxcam bench`: rows per provider and batch size, skips, map differences, report files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnxcam.benchmark.providers import add_differences, rank_correlation, skip_reason
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


def bench_process(model, out, *extra: str) -> subprocess.CompletedProcess:
    """`onnxcam bench` in its own interpreter: what the resource tracker says at exit shows."""
    command = [sys.executable, "-m", "onnxcam", "bench", str(model), "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def test_a_progress_bar_counts_provider_batch_and_method_steps(tmp_path, resnet_onnx):
    extra = ["--providers", "cpu,cuda", "--batch-sizes", "1,4", "--methods", "score-cam,grad-cam"]
    done = bench_process(resnet_onnx, tmp_path / "b", *extra, "--rounds", "2")
    assert done.returncode == 0, done.stderr
    frames = done.stderr.replace("\r", "\n").splitlines()
    # cuda is skipped here or measured: 6 steps (2 batch sizes x forward + 2 methods) per run
    total = 6 if NO_CUDA else 12
    assert any(f"{total}/{total}" in f and "batch 4: grad-cam" in f for f in frames)
    assert any("cpu fp32 batch 1: forward" in f for f in frames)
    assert "leaked" not in done.stderr
    quiet = bench_process(resnet_onnx, tmp_path / "q", *extra, "--rounds", "2", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.slow
def test_no_leaked_semaphores_after_a_long_method(tmp_path, lite0_onnx):
    """Grad-CAM then RISE's 4000 masks at batch 1 on EfficientNet-Lite0: the measuring process
    used to be terminated by its pool and leave a semaphore behind (a resource_tracker warning
    at exit, every time with these settings)."""
    done = bench_process(
        lite0_onnx,
        tmp_path,
        "--providers",
        "cpu",
        "--batch-sizes",
        "1",
        "--methods",
        "grad-cam,rise",
        "--images",
        "1",
        "--rounds",
        "2",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no "leaked semaphore" warning, nor anything else


def test_int8_runs_the_perturbation_methods_and_skips_the_gradient_ones(tmp_path, resnet_onnx):
    out = tmp_path / "bench"
    args = ["bench", str(resnet_onnx), "--providers", "cpu", "--batch-sizes", "4"]
    args += ["--methods", "rise,grad-cam", "--rounds", "2", "--int8", "--quiet", "--out", str(out)]
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    int8 = {r["method"]: r for r in rows if r["bench"] == "explain" and r["precision"] == "int8"}
    assert int8["rise"]["status"] == "ok" and 0.5 < int8["rise"]["rank_corr_vs_cpu"] <= 1
    assert int8["rise"]["max_abs_diff_vs_cpu"] > 0  # int8 is not float32
    assert int8["grad-cam"]["status"] == "skipped"
    assert "no gradient through DequantizeLinear" in int8["grad-cam"]["reason"]


def test_rank_correlation_is_spearmans_median():
    a = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    b = a.copy()
    b[1] = -b[1]
    assert rank_correlation(a, a) == 1.0
    assert rank_correlation(b[1:], a[1:]) == -1.0
    assert rank_correlation(b, a) == 0.0  # the median of the two maps' 1 and -1
    assert rank_correlation(np.zeros_like(a), a) is None  # constant maps have no ranks
