"""Backward graphs built from a forward ONNX graph: gradients now, relevance beside them.

`build(model, GRADIENT, seeds, wrt)` returns one ONNX graph that computes the forward pass and
the reverse sweep from seeded tensors (e.g. the class scores, seeded with one-hot rows) to the
tensors asked about, with standard ONNX ops only and a free batch axis.
"""

from onnxcam.engine.backward import gradients  # noqa: F401  (registers the gradient rules)
from onnxcam.engine.backward.emitter import BackwardError, Emitter
from onnxcam.engine.backward.rulesets import GRADIENT
from onnxcam.engine.backward.sweep import RuleSet, build, grad_name, seed_name, tally_name

__all__ = [
    "GRADIENT",
    "BackwardError",
    "Emitter",
    "RuleSet",
    "build",
    "grad_name",
    "seed_name",
    "tally_name",
]
