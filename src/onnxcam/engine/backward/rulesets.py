"""The rule sets the reverse sweep can run: gradients now, relevance propagation beside it."""

from onnxcam.engine.backward.sweep import RuleSet

GRADIENT = RuleSet("gradient")
