"""Layer-wise relevance propagation (algorithms §2.17) as rules for the reverse sweep.

`Composite(name, ...).rules(model)` is a RuleSet for `backward.build`: seeded at the class
scores with y_c one-hot rows, the sweep returns the signed relevance of every input element.
BatchNormalization, and per-channel elementwise constants after a Conv/Gemm, are folded into
that layer first (`fold_linear_layers`).
"""

from onnxcam.engine.backward import gradients  # noqa: F401  (relevance reuses gradient rules)
from onnxcam.engine.backward.relevance import passing  # noqa: F401  (registers the op mapping)
from onnxcam.engine.backward.relevance.composites import COMPOSITES, Composite, rule_set
from onnxcam.engine.backward.relevance.fold import (
    fold_affine_chains,
    fold_batch_norms,
    fold_linear_layers,
)
from onnxcam.engine.backward.relevance.linear import ABSORBED

__all__ = [
    "ABSORBED",
    "COMPOSITES",
    "Composite",
    "fold_affine_chains",
    "fold_batch_norms",
    "fold_linear_layers",
    "rule_set",
]
