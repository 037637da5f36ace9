"""From channel weights to the final map: combine, ReLU, resize, normalise (algorithms §1.4).

The order of these steps differs between libraries and changes the numbers, so it is a value
that method profiles set rather than code that each method repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from onnxcam.kernels import minmax_normalize, resize, resize_normalize, weighted_sum

#: The engine's epsilon of the final min-max normalisation (algorithms §1.3).
MAP_EPS = 1e-8


@dataclass(frozen=True)
class PostProcess:
    """How raw maps become [0, 1] maps at input resolution.

    align_corners: the resize's sampling grid. eps: added to (max - min).
    normalize_before_resize: min-max at layer resolution first, then resize and min-max again
    (pytorch-grad-cam). relu_after_resize: combine at input resolution and apply ReLU there
    (official Score-CAM code); otherwise ReLU is applied at layer resolution.
    """

    align_corners: bool = False
    eps: float = MAP_EPS
    normalize_before_resize: bool = False
    relu_after_resize: bool = False


def finish_maps(
    raw: np.ndarray, size: Sequence[int], post: PostProcess
) -> tuple[np.ndarray, np.ndarray]:
    """Resize and normalise raw maps (N, *s) -> (N, *size); also returns which came out constant."""
    if post.normalize_before_resize:
        raw, _ = minmax_normalize(raw, post.eps)
    return resize_normalize(raw, size, post.align_corners, post.eps)


def combine(
    activations: np.ndarray, weights: np.ndarray, size: Sequence[int], post: PostProcess
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw, maps, constant): raw = ReLU(sum_k w_k A^k) at layer resolution, maps in [0, 1]."""
    if not post.relu_after_resize:
        raw = weighted_sum(activations, weights, relu=True)
        maps, constant = finish_maps(raw, size, post)
        return raw, maps, constant
    signed = weighted_sum(activations, weights, relu=False)
    upsampled = np.maximum(resize(signed, size, post.align_corners), 0)
    maps, constant = minmax_normalize(upsampled, post.eps)
    return np.maximum(signed, 0), maps, constant
