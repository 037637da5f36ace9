"""What building an Explainer does before its first call: the graphs a first call would open
are open, and each session has run a few times (engine/warmup.py)."""

from __future__ import annotations

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
