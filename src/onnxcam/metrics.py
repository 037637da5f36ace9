"""Faithfulness metrics: `onnxcam.metrics.deletion(explainer, x, maps, classes)` and the rest.

The public face of `onnxcam.engine.metrics`; see that package for the definitions.
"""

from onnxcam.engine.metrics import *  # noqa: F403
from onnxcam.engine.metrics import __all__  # noqa: F401
