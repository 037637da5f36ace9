"""The graphs of one model that an explanation may need, each built and opened once.

`full` is the model with the target layer exposed; `tail` runs from the layer to the class
scores (feature-space methods perturb activations and run only this part); `scaled` is the full
model with a per-channel scale on the layer (ablation through the whole model).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import onnx

from onnxcam.engine import graph
from onnxcam.engine.runner import Runner


class ModelViews:
    """Full, tail and scaled graphs of one model at one layer, on one provider."""

    def __init__(
        self,
        model: onnx.ModelProto,
        layer: str,
        provider: str = "cpu",
        threads: int | None = None,
        allow_fallback: bool = False,
    ) -> None:
        self.model, self.layer = model, layer
        self.logits = graph.logits_tensor(model)
        self.layer_output = graph.exposed_name(model, layer)
        self._session_args = (provider, threads, allow_fallback)
        self.full = Runner(graph.expose(model, [self.logits, layer]), *self._session_args)

    @cached_property
    def split(self) -> graph.Split:
        return graph.split(self.model, self.layer, [self.logits])

    @cached_property
    def tail(self) -> Runner:
        return Runner(self.split.tail, *self._session_args, input_name=self.layer)

    @cached_property
    def _head(self) -> Runner:
        return Runner(graph.expose(self.model, list(self.split.crossing)), *self._session_args)

    def crossing(self, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
        """Values of the tensors that cross the cut, for inputs x (computed once per call)."""
        names = list(self.split.crossing)
        if not names:
            return {}
        return dict(zip(names, self._head.run(x, names, batch_size), strict=True))

    @cached_property
    def scaled(self) -> Runner:
        model = graph.scale_channels(self.model, self.layer, graph.CHANNEL_SCALE)
        return Runner(model, *self._session_args, input_name=graph.model_input(self.model).name)
