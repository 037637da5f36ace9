"""Torch references written from the papers, shared by the tests and bench/ (which puts this
folder on its path): one Score-CAM and one ReciproCAM for images and series alike."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]


def minmax(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(m - min) / (max - min + eps) per map of a stack (M, *spatial)."""
    flat = maps.flatten(1)
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
    return ((flat - lo) / (hi - lo + eps)).view_as(maps)


def upsample(maps: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(M, *s) -> (M, *size): bilinear (linear for series), align_corners=False."""
    mode = "bilinear" if len(size) == 2 else "linear"
    return F.interpolate(maps[:, None], size=size, mode=mode, align_corners=False)[:, 0]


@torch.inference_mode()
def score_cam(
    forward: Forward, activations: torch.Tensor, x: torch.Tensor, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Score-CAM from the paper's Algorithm 1 (maps, weights, targets, masked passes run).

    H_k = minmax(Up(A_k)), S_k = logit_c(X * H_k), w = softmax_k(S) over the non-constant
    channels (constant ones weigh 0 and cost no pass), L = minmax(Up(ReLU(sum_k w_k A_k))).
    `forward` maps inputs to class scores, `activations` are the layer's (N, K, *s) for x.
    """
    size = tuple(x.shape[2:])
    targets = forward(x).argmax(dim=1)
    n_images, n_channels = activations.shape[:2]
    flat = activations.flatten(2)
    constant = flat.amax(dim=2) <= flat.amin(dim=2)
    images, channels = torch.nonzero(~constant, as_tuple=True)
    scores = torch.empty(len(images), dtype=torch.float64)
    for start in range(0, len(images), batch_size):
        n = images[start : start + batch_size]
        masks = minmax(upsample(activations[n, channels[start : start + batch_size]], size))
        logits = forward(x[n] * masks[:, None]).reshape(len(n), -1)
        scores[start : start + len(n)] = logits[torch.arange(len(n)), targets[n]].double()
    grid = torch.full((n_images, n_channels), -torch.inf, dtype=torch.float64)
    grid[images, channels] = scores
    weights = torch.softmax(grid, dim=1).nan_to_num(0.0)
    combined = weights.view(n_images, n_channels, *[1] * len(size)) * activations.double()
    raw = combined.sum(1).relu().float()
    maps = minmax(upsample(raw, size))
    return maps.numpy(), weights.numpy(), targets.numpy(), len(images)


def spread(vector: torch.Tensor, centre: tuple[int, ...], spatial: tuple[int, ...], gaussian: bool):
    """A feature map zero but at `centre`, or the centre's vector spread over its neighbours
    with [1, 2, 1] / 4 per axis (ReciproCAM's Gaussian option), cut at the borders."""
    mosaic = torch.zeros((len(vector), *spatial), dtype=vector.dtype)
    taps = torch.tensor([0.25, 0.5, 0.25], dtype=vector.dtype) if gaussian else torch.ones(1)
    reach = 1 if gaussian else 0
    for offset in np.ndindex(*[len(taps)] * len(spatial)):
        where = [c + o - reach for c, o in zip(centre, offset, strict=True)]
        if all(0 <= w < s for w, s in zip(where, spatial, strict=True)):
            weight = torch.prod(taps[list(offset)])
            mosaic[(slice(None), *where)] = vector * weight
    return mosaic


@torch.inference_mode()
def recipro_cam(
    tail: Forward, activations: torch.Tensor, targets: np.ndarray, gaussian: bool = False
) -> np.ndarray:
    """ReciproCAM (Byun & Lee): S(i, j) = softmax(tail(F_ij))_c for one mosaic per location;
    `tail` maps layer activations to class scores. Returns (N, *s) probabilities."""
    spatial = tuple(activations.shape[2:])
    out = np.zeros((len(activations), *spatial))
    for n, acts in enumerate(activations):
        for centre in np.ndindex(*spatial):
            mosaic = spread(acts[(slice(None), *centre)], centre, spatial, gaussian)
            out[(n, *centre)] = torch.softmax(tail(mosaic[None]).double(), 1)[0, targets[n]]
    return out
