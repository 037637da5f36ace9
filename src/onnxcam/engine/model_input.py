"""The model's data input as onnxcam sees it: checked batches, handed over channels-first.

Users give inputs in the model's own layout ((N, H, W, C) for a Keras model); everything past
this check works on channels-first (N, C, *S) arrays (engine/layout.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onnxcam.engine import layout
from onnxcam.engine.graph import Dim, TensorSpec, numpy_dtype
from onnxcam.errors import InputError


@dataclass(frozen=True)
class ModelInput:
    """The data input's spec and layout; `validate` turns a user's batch into the engine's."""

    spec: TensorSpec
    layout: str = layout.CHANNELS_FIRST

    @property
    def dtype(self) -> type:
        """The numpy dtype the model's input takes."""
        return numpy_dtype(self.spec.elem_type)

    @property
    def shape(self) -> tuple[Dim, ...] | None:
        """The input shape as (N, C, *S), whatever the model's layout."""
        return layout.channels_first_shape(self.spec.shape, self.layout)

    def validate(self, x: np.ndarray) -> np.ndarray:
        """Check rank, size, dtype and finiteness of a batch in the model's own layout; returns
        it channels-first (N, C, *S)."""
        if not isinstance(x, np.ndarray):
            raise InputError(f"expected a numpy array, got {type(x).__name__}")
        shape = self.spec.shape
        last = self.layout == layout.CHANNELS_LAST
        names = ("(N, H, W, C)", "(N, T, C)") if last else ("(N, C, H, W)", "(N, C, T)")
        expected_layout = names[0] if shape is None or len(shape) == 4 else names[1]
        if shape is not None and x.ndim != len(shape):
            raise InputError(
                f"expected input of rank {len(shape)} {expected_layout}, got shape {x.shape}"
            )
        if x.ndim not in (3, 4):
            raise InputError(f"expected input of shape {' or '.join(names)}, got {x.shape}")
        if shape is not None:
            for axis, (want, got) in enumerate(zip(shape[1:], x.shape[1:], strict=True), start=1):
                if isinstance(want, int) and want != got:
                    expected = tuple("N" if i == 0 else d for i, d in enumerate(shape))
                    raise InputError(
                        f"expected input shape {expected}, got {x.shape} (axis {axis})"
                    )
        if x.dtype != self.dtype:
            name = np.dtype(self.dtype).name
            raise InputError(
                f"expected dtype {name}, got {x.dtype.name} (convert with x.astype(np.{name}))"
            )
        if len(x) == 0:
            raise InputError("expected at least one input, got an empty batch")
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x).reshape(len(x), -1).all(axis=1)).ravel()
            raise InputError(f"input contains NaN or Inf (inputs {bad.tolist()})")
        return layout.to_channels_first(x, self.layout)
