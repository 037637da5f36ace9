"""IS-CAM (Naidu et al. 2020, algorithms §2.9): Score-CAM integrated along the mask's scale."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context
from onnxcam.engine.methods.parts.masking import MaskedInputs, MaskScoring
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice, integer
from onnxcam.engine.runner import Perturbation

SCHEDULES = ("linear", "cumulative")


@register
class ISCAM(MaskScoring):
    """IS-CAM (Naidu et al., arXiv 2010.03023): Score-CAM scores averaged over scaled masks.

    S_k = (1/N) sum_i y^c(c_i X * H_k), w = softmax_k(S); c_i = i/N (`linear`, the integrated
    gradients path) or sum_{j<=i} j/N (`cumulative`, torchcam's code).
    """

    name = "is-cam"
    passes = "channels x `n_steps`"

    n_steps: int = integer(10, "integration steps per channel", low=1, most=10_000)
    schedule: str = choice(
        "linear", SCHEDULES, "scale of the masked input at each step", what="IS-CAM schedule"
    )

    @property
    def repeats(self) -> int:
        return self.n_steps

    def coefficients(self) -> np.ndarray:
        """Scale of the masked input at steps 1..N: i/N, or cumulative sum_{j<=i} j/N."""
        steps = np.arange(1, self.n_steps + 1) / self.n_steps
        return steps if self.schedule == "linear" else np.cumsum(steps)

    def perturbation(self, ctx: Context, images: np.ndarray, channels: np.ndarray) -> Perturbation:
        scales = np.tile(self.coefficients(), len(images) // self.repeats).astype(np.float32)
        return MaskedInputs(ctx, images, channels, self.profile_settings, scales=scales)
