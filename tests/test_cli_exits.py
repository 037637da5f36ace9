"""How the command line ends when things go wrong: one line on stderr and exit 2 for bad
input, exit 130 and no temporary files left when interrupted, a quiet exit when its reader
goes away."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from toy_models import conv_gap_linear

from onnxcam import Explainer
from onnxcam.cli import main
from onnxcam.errors import ProviderError
from onnxcam.io import writing

CLI = [sys.executable, "-m", "onnxcam.cli"]


def _default_interrupt() -> None:
    """SIGINT as a terminal delivers it, also where the tests run as a background job (whose
    shell ignores SIGINT, an ignored disposition that the child would inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_main(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until the child runs onnxcam's main, whose first act is to catch SIGTERM (Linux: read off
    /proc): an interrupt before that falls in the interpreter's own start-up, which no code of
    onnxcam's runs in, and a fixed sleep does not tell the two apart on a slow machine."""
    status = f"/proc/{process.pid}/status"
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        with open(status) as lines:
            caught = next(line for line in lines if line.startswith("SigCgt:"))
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("onnxcam: error: ")


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(writing.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        writing.write_atomic(tmp_path / "map.npy", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("sig", "delay"), [(signal.SIGTERM, 2.5), (signal.SIGINT, 2.5)])
def test_signals_end_in_one_line_and_leave_nothing_half_written(resnet_onnx, tmp_path, sig, delay):
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32))
    out = tmp_path / "out"
    args = ["explain", str(resnet_onnx), str(x), "--method", "rise", "--quiet", "--out", str(out)]
    process = subprocess.Popen(
        [*CLI, *args, "--option", "n_masks=100000"],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_interrupt,
    )
    time.sleep(delay)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err == "onnxcam: interrupted\n"
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the child's /proc")
def test_an_interrupt_while_importing_is_one_line():
    process = subprocess.Popen(
        [*CLI, "methods"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_interrupt,
    )
    wait_for_main(process)  # the verb's imports run inside main, after the interpreter started
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode in (0, 130)  # 0: the listing was already done
    assert b"Traceback" not in err


def test_a_closed_stdout_ends_quietly():
    listing = subprocess.Popen([*CLI, "methods"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    listing.stdout.readline()
    listing.stdout.close()  # as `| head -1` does
    _, err = listing.communicate(timeout=60)
    assert listing.returncode == 0 and err == b""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["export", "os:getcwd", "--input-shape", "1,3,8,8", "-o", "{tmp}/m.onnx"],
            "expected a torch.nn.Module or a callable returning one, got str",
        ),
        (
            ["export", "os:sep", "--input-shape", "1,3,8,8", "-o", "{tmp}/m.onnx"],
            "expected a torch.nn.Module or a callable returning one, got str",
        ),
        (
            ["export", "toy_models:tiny_resnet", "--input-shape", "1,x", "-o", "{tmp}/m.onnx"],
            "--input-shape expects comma-separated positive sizes",
        ),
        (
            ["explain-dataset", "{model}", "{tmp}", "--out", "{tmp}/o", "--threads", "-2"],
            "threads must be >= 1, got -2",
        ),
        (
            ["explain", "{model}", "{tmp}/x.npy", "--threads", "0", "--out", "{tmp}/o"],
            "threads must be >= 1, got 0",
        ),
        (["layers", "{flat}"], "expected tensors of shape (N, K, H, W) or (N, K, T)"),
    ],
)
def test_bad_commands_are_one_line_and_exit_2(resnet_onnx, tmp_path, capsys, argv, message):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    flat = helper.make_graph(  # no tensor with spatial axes
        [helper.make_node("Relu", ["x"], ["logits"])],
        "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(flat, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "flat.onnx")
    names = {"tmp": tmp_path, "model": resnet_onnx, "flat": tmp_path / "flat.onnx"}
    code = main([a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err), err
    assert message in err


def test_a_provider_that_is_not_a_name(resnet_onnx):
    with pytest.raises(ProviderError, match="provider must be a name such as 'cpu'"):
        Explainer(resnet_onnx, provider=None)


def test_help_describes_onnxcam_in_whole_sentences(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "ONNX image and time-series classifiers, run as batched ONNX Runtime inference." in text
    assert "`onnxcam VERB --help` describes a verb." in text


def test_version(capsys):
    import re
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE).group(1)
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"onnxcam {declared}\n"  # the version the package declares


def test_an_image_for_a_series_model_names_the_array_it_expects(tmp_path, capsys):
    import torch
    from PIL import Image

    from onnxcam.exporters import from_torch

    model = conv_gap_linear(1, 4, 2, kernel=3, rank=1)
    from_torch(model, torch.randn(2, 1, 50), tmp_path / "ts.onnx", layers=["1"])
    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    code = main(["explain", str(tmp_path / "ts.onnx"), str(tmp_path / "a.png"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err)
    assert "expected a .npy or .csv array of shape (1, 50), got an image" in err
    assert (
        main(["explain", str(tmp_path / "ts.onnx"), str(tmp_path / "a.png"), "--size", "100"]) == 2
    )
    err = capsys.readouterr().err
    assert one_line(err) and "--size HxW is for image models" in err and "(N, C, 50)" in err


def test_an_unknown_method_option_lists_the_valid_ones(resnet_onnx, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 32, 32), np.float32))
    args = ["explain", str(resnet_onnx), str(x), "--method", "rise", "--option", "masks=9"]
    assert main([*args, "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "unknown option 'masks'" in err
    assert "its options are: n_masks, cells, p, seed, score" in err
