"""The rule sets the reverse sweep can run: gradients, and relevance propagation (LRP).

`RELEVANCE` holds the relevance rules of the non-linear and structural ops; each LRP composite
adds its own rules for the linear layers (backward/relevance/composites.py).
"""

from onnxcam.engine.backward.sweep import RuleSet

GRADIENT = RuleSet("gradient")
RELEVANCE = RuleSet("relevance")
