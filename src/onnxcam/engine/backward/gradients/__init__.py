"""Gradient rules, one per op, registered in `rulesets.GRADIENT` when imported.

Each rule returns dL/d(input) for the inputs that need it, from dL/d(output) of the node, using
standard ONNX ops only (ConvTranspose for Conv, ScatterElements for MaxPool, ...), so the
backward graph runs in plain ONNX Runtime on any provider with a dynamic batch axis.
"""

from onnxcam.engine.backward.gradients import (  # noqa: F401  (import registers the rules)
    activations,
    conv,
    einsum,
    elementwise,
    linear,
    normalization,
    pooling,
    resize,
    shape,
)
