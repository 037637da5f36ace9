"""bench/macs.py, the MAC counts behind salience.py's floor, against torch's own FLOP counter
on the same network, and a gradient graph's adjoint convolutions against their forward ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from toy_models import export_plain

from onnxcam.engine import backward, graph

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from macs import macs  # noqa: E402


def network() -> nn.Module:
    """Dense, strided, depthwise and transposed convolutions and a linear head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 5, padding=2, groups=8),
        nn.ConvTranspose2d(8, 4, 2, stride=2),
        nn.Conv2d(4, 6, 1),
        nn.Flatten(),
        nn.Linear(6 * 20 * 20, 10),
    ).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[nn.Module, Path]:
    model = network()
    path = tmp_path_factory.mktemp("macs") / "net.onnx"
    export_plain(model, path, (3, 20, 20), input_names=["x"], output_names=["y"])
    return model, path


def test_macs_equal_torchs_flop_count_over_two(exported):
    model, path = exported
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(3, 3, 20, 20))
    assert macs(graph.load(path), {"x": (3, 3, 20, 20)}, ["y"]) == counter.get_total_flops() // 2


def test_the_gradient_sweep_costs_its_forward_convolutions_again(exported):
    """The input gradient of the convolutions: each adjoint does its forward's MACs; of the
    forward part only the first convolution (the ReLU's mask) is needed."""
    _, path = exported
    model = graph.load(path)
    layer = [n.output[0] for n in model.graph.node if n.op_type == "Conv"][-1]
    size = {"x": (1, 3, 20, 20)}
    to_layer = macs(model, size, [layer])
    sweep = backward.build(model, backward.GRADIENT, [layer], ["x"], [])
    seed = {backward.seed_name(layer): (1, 6, 20, 20)}
    outputs = [backward.grad_name("x")]
    forward_part = frozenset(name for node in model.graph.node for name in node.output)
    assert macs(sweep, {**size, **seed}, outputs, forward_part) == to_layer
    first = model.graph.node[0]
    assert first.op_type == "Conv"
    assert macs(sweep, {**size, **seed}, outputs) == to_layer + macs(model, size, [first.output[0]])
