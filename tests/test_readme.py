"""The README's shell commands: each is accepted by the real argument parser, and those whose
files the fixtures can stand in for run and write what the README says they write."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from onnxcam.cli import main
from onnxcam.cli.dispatch import parser

ROOT = Path(__file__).resolve().parents[1]
#: Verbs whose README examples can run on the fixtures (the rest are only parsed).
RUNNABLE = {"layers", "methods", "explain", "explain-dataset"}


def readme_commands(text: str) -> list[str]:
    """Every `onnxcam ...` line of the README's shell blocks and indented blocks, continuation
    lines joined, comments dropped."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    blocks += [m.group(1) for m in re.finditer(r"^ {4}(onnxcam .*)$", text, re.M)]
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("onnxcam "):
                commands.append(line)
    return commands


def argv_of(command: str, optional: bool = True) -> list[str]:
    """The command's arguments, with the optional parts written `[--flag VALUE]` given or
    left out."""
    return shlex.split(re.sub(r"\[([^\]]+)\]", r"\1" if optional else "", command))[1:]


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def test_the_readme_has_commands_of_every_verb():
    verbs = {argv_of(c)[0] for c in COMMANDS}
    assert {"explain", "explain-dataset", "evaluate", "export", "bench", "layers"} <= verbs


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command, capsys):
    try:
        parser().parse_args(argv_of(command))
    except SystemExit:
        pytest.fail(f"the CLI refuses the README's {command!r}: {capsys.readouterr().err}")


@pytest.fixture
def sandbox(tmp_path, resnet_onnx):
    """A folder holding the files the README's commands name, made from the fixtures."""
    (tmp_path / "model.onnx").write_bytes(resnet_onnx.read_bytes())
    photo = Image.fromarray(data.coffee()).resize((64, 48))
    for name in ("a.jpg", "b.png", "images/one.png", "images/two.jpg", "more/three.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        photo.save(tmp_path / name)
    for name in ("val/cat/1.JPEG", "val/dog/2.JPEG"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        photo.save(tmp_path / name)
    (tmp_path / "list.txt").write_text("a.jpg\nb.png\n")
    np.save(tmp_path / "c.npy", np.zeros((3, 32, 32), np.float32))
    return tmp_path


def runnable(command: str, folder: Path) -> bool:
    """Whether the command's verb can run here and every file it reads is in `folder`."""
    args = parser().parse_args(argv_of(command))
    if args.command not in RUNNABLE or getattr(args, "engine", "local") != "local":
        return False
    files = [getattr(args, "model", None), *getattr(args, "inputs", [])]
    return all(list(folder.glob(f)) for f in files if f is not None)


def test_readme_commands_run_as_written(sandbox, monkeypatch, capsys):
    monkeypatch.chdir(sandbox)
    ran = []
    for command in COMMANDS:
        if not runnable(command, sandbox):
            continue
        argv = argv_of(command, optional=False)
        code = main([*argv, "--quiet"] if argv[0].startswith("explain") else argv)
        assert code == 0, f"{command}: {capsys.readouterr().err}"
        ran.append(argv[0])
    assert ran.count("explain") >= 3 and ran.count("explain-dataset") >= 2
    # what the README says explain-dataset --out run/ writes
    assert sorted(p.as_posix() for p in Path("run/maps").rglob("*.npy")) == [
        "run/maps/cat/1.npy",
        "run/maps/dog/2.npy",
    ]
    assert {p.as_posix() for p in Path("run2/maps").rglob("*.png")} == {
        "run2/maps/a.png",
        "run2/maps/b.png",
        "run2/maps/val/cat/1.png",
        "run2/maps/val/dog/2.png",
    }
    assert {p.name for p in Path("out").glob("*.png")} >= {"one.png", "two.png", "three.png"}


def test_export_finds_a_module_in_the_current_folder(tmp_path):
    """As `python -m` does: the current folder is searched, even when the script that runs
    onnxcam lives elsewhere (as the installed `onnxcam` command does)."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "mymodels.py").write_text(
        "import torch\n"
        "def net():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),\n"
        "        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))\n"
    )
    launcher = tmp_path / "bin" / "onnxcam_launcher.py"
    launcher.parent.mkdir()
    launcher.write_text("import sys\nfrom onnxcam.cli import main\nsys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [
            sys.executable,
            str(launcher),
            "export",
            "mymodels:net",
            "--input-shape",
            "1,3,16,16",
            "--layers",
            "1",
            "-o",
            "m.onnx",
        ],
        cwd=tmp_path / "work",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "work" / "m.onnx").stat().st_size > 0
