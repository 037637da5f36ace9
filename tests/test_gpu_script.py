"""bench/gpu.sh, the prepared GPU run, as far as a machine without a GPU can hold it: its
arguments, its refusal without a GPU, the steps it would run, and its ResNet-50 shape."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.sh"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path) if path is not None else None
    return subprocess.run(
        [BASH, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_bad_arguments_are_one_line_and_exit_2():
    result = run("--bogus")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gpu.sh: unknown argument '--bogus'; usage: bench/gpu.sh [--out DIR] [--python PYTHON] "
        "[--no-install] [--dry-run]"
    ]
    result = run("--out")
    assert result.returncode == 2 and "--out expects a folder" in result.stderr
    assert run("--help").returncode == 0


def test_without_a_gpu_it_stops_before_any_step(tmp_path):
    for tool in ("dirname", "timeout"):  # what the script runs before the GPU check; no nvidia-smi
        (tmp_path / tool).symlink_to(shutil.which(tool))
    result = run("--out", str(tmp_path / "out"), path=str(tmp_path))
    assert result.returncode == 2
    assert "expected an NVIDIA GPU (nvidia-smi -L), found none" in result.stderr
    assert not (tmp_path / "out").exists() and "+ " not in result.stdout


def test_the_steps_cover_tests_models_precisions_and_batch_sizes(tmp_path):
    result = run("--dry-run", "--no-install", "--python", sys.executable, "--out", "o")
    assert result.returncode == 0
    steps = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert any("-m pytest -q -x -m gpu" in s and "tests/test_runner.py" in s for s in steps)
    benches = [s for s in steps if " bench " in s]
    assert [s.split()[4] for s in benches] == [
        "o/models/resnet50.onnx",
        "o/models/efficientnet-lite0.onnx",
    ]
    for s in benches:
        assert "--providers cpu,cuda" in s and "--batch-sizes 64,128,256" in s and "--fp16" in s
        assert "--methods score-cam,grad-cam,recipro-cam" in s
    assert not any("pip install" in s for s in steps)


def test_the_resnet50_shape_has_resnet50s_parameters():
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_models import main, resnet50_shape

    model = resnet50_shape()
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision's resnet50
    assert main(["--out", "unused", "--models", "resnet51"]) == 2
