"""The fuzzer in the suite: seeded random models, inputs, methods and options, and mutated
model files, through the API and the command line. Every case must end in good maps or an
onnxcam error (the CLI: exit 2, one line); `python -m onnxcam.testing.fuzz` runs it longer."""

from __future__ import annotations

import collections

from onnxcam.testing.fuzz import KINDS, fuzz

CASES = 1200


def test_every_case_ends_in_maps_or_an_onnxcam_error():
    outcomes = fuzz(CASES, seed=0, seconds=110)
    failures = [f"seed {o.seed}: {o.what}\n{o.detail}" for o in outcomes if o.result == "failure"]
    assert not failures, "\n".join(failures[:5])
    assert len(outcomes) >= 300
    by_kind = collections.Counter((o.kind, o.result) for o in outcomes)
    for kind in set(KINDS):
        assert by_kind[kind, "error"] > 0, kind  # every kind of case reached an error
    assert by_kind["api", "maps"] > 100 and by_kind["cli", "maps"] > 20
