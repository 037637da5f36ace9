"""What building an Explainer does before its first call: the graphs a first call would open
are open, and each session has run a few times (engine/warmup.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from onnxcam import Explainer
from onnxcam.engine import warmup
from onnxcam.engine.runner import Runner


def test_settle_runs_a_few_times_and_stops_at_its_time_budget(monkeypatch):
    calls = []
    warmup.settle(lambda: calls.append(1))
    assert len(calls) == warmup.SETTLE_RUNS
    clock = iter(range(100))  # one second per reading of the clock
    monkeypatch.setattr(warmup.time, "perf_counter", lambda: next(clock))
    calls.clear()
    warmup.settle(lambda: calls.append(1))
    assert len(calls) == 1  # the first run already took more than SETTLE_SECONDS


def test_construction_opens_and_runs_the_tail_graphs(resnet_onnx, monkeypatch):
    runs: dict[int, int] = {}
    real = Runner.run_batch

    def counted(self, x, outputs, feeds=None):
        runs[id(self)] = runs.get(id(self), 0) + 1
        return real(self, x, outputs, feeds)

    monkeypatch.setattr(Runner, "run_batch", counted)
    explainer = Explainer(resnet_onnx, layer="layer3", progress=False)
    views = explainer.views  # layer3 -> GAP -> fc: a tail, a pooled tail, a tail backward
    _, pooled = views.pooled
    assert runs.get(id(views.full)) == warmup.SETTLE_RUNS + 1  # + the values the tails take
    for runner in (pooled, views._tail_backward):
        assert runs.get(id(runner)) == warmup.SETTLE_RUNS
    assert "tail" in views.__dict__  # opened, for the methods that run it


def test_without_warming_nothing_runs_until_the_first_call(resnet_onnx, monkeypatch):
    """warm=False (one-shot callers): no session runs and no tail graph opens at
    construction; the first call opens what its method needs and gives the warmed maps."""
    runs = []
    real = Runner.run_batch
    monkeypatch.setattr(
        Runner, "run_batch", lambda self, *a, **k: runs.append(self) or real(self, *a, **k)
    )
    cold = Explainer(resnet_onnx, layer="layer3", progress=False, warm=False)
    assert runs == [] and "tail" not in cold.views.__dict__
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    got = cold.explain(x, "ablation-cam")
    want = Explainer(resnet_onnx, layer="layer3", progress=False).explain(x, "ablation-cam")
    np.testing.assert_array_equal(got.maps, want.maps)


def test_warming_compiles_every_per_call_kernel():
    """In a fresh process, each kernel behind onnxcam.kernels' public functions has been
    loaded or compiled once warm_kernels has run, so no first explain call pays for it."""
    script = """
import sys
from numba.core.registry import CPUDispatcher
from onnxcam import kernels
from onnxcam.kernels.warm import warm_kernels
warm_kernels()
modules = {sys.modules[getattr(kernels, name).__module__] for name in kernels.__all__}
entries = {
    f"{module.__name__}.{name}": value
    for module in modules
    for name, value in vars(module).items()
    if isinstance(value, CPUDispatcher) and name.startswith("_")
}
print(sorted(entries))
print(sorted(name for name, kernel in entries.items() if not kernel.signatures))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entries, cold = done.stdout.splitlines()[-2:]
    assert "onnxcam.kernels.spread._spread_rows" in entries
    assert cold == "[]"
