"""SS-CAM (Naidu & Michael 2020, algorithms §2.8): Score-CAM with noise on the masks."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context
from onnxcam.engine.methods.parts.masking import MaskedInputs, MaskScoring
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import integer, number, seed
from onnxcam.engine.runner import Perturbation


@register
class SSCAM(MaskScoring):
    """SS-CAM (Naidu & Michael, arXiv 2006.14255): Score-CAM scores averaged over noisy masks.

    S_k = (1/N) sum_n y^c(X * (H_k + d_n)), d_n ~ N(0, sigma^2) per mask element (torchcam's
    reading), w = softmax_k(S). Noise is seeded per (seed, channel, sample), so a map does not
    depend on batching or provider.
    """

    name = "ss-cam"
    passes = "channels x `n_samples`"

    n_samples: int = integer(35, "noisy masks per channel", low=1, most=10_000)
    sigma: float = number(2.0, "standard deviation of the noise on [0, 1] masks", low=0)
    seed: int = seed()

    @property
    def repeats(self) -> int:
        return self.n_samples

    @property
    def shares_masks(self) -> bool:
        return self.sigma == 0  # noise is drawn per channel: equal maps still differ

    def perturbation(self, ctx: Context, images: np.ndarray, channels: np.ndarray) -> Perturbation:
        samples = np.tile(np.arange(self.repeats), len(images) // self.repeats)
        return MaskedInputs(
            ctx,
            images,
            channels,
            self.profile_settings,
            samples=samples,
            sigma=self.sigma,
            seed=self.seed,
        )
