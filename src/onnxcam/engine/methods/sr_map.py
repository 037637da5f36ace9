"""Salient Relevance map (spec §2.18): LRP, then context-aware saliency on the relevance image.

`explain(x, method="sr-map", composite=...)`: the input relevance from the LRP graph
(methods/lrp.py) becomes a heatmap |R| in [0, 1] (one min-max over all channels and samples,
as the SR code does before saving it, minus its 8-bit JPEG round trip), and context-aware
saliency (engine/context_saliency.py) turns that heatmap into the map. `heatmap="channels"`
keeps the per-channel |R| (3 channels of an RGB model are read as a colour image, as the SR
code does); `"sum"` sums |R| over channels first (one grey channel). Options of the saliency
step (patch, stride, k, c, scales, threshold, side, max_patches, colour) pass through.
Default composite `epsilon-plus`; the SR code's own rules are `composite="sr-official"`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from onnxcam.engine.context_saliency import ContextSaliency, context_saliency
from onnxcam.engine.methods.base import Context, MethodOutput, register
from onnxcam.engine.methods.lrp import LRP, input_relevance
from onnxcam.kernels import minmax_normalize

HEATMAPS = ("channels", "sum")


def relevance_heatmap(relevance: np.ndarray, heatmap: str) -> np.ndarray:
    """(C, *S) signed relevance of one input -> |R| min-max scaled to [0, 1] over all channels
    and samples ((1, *S) for "sum"); all zeros where |R| is constant."""
    magnitude = np.abs(relevance)
    if heatmap == "sum":
        magnitude = magnitude.sum(axis=0, keepdims=True)
    scaled, _ = minmax_normalize(magnitude[None], eps=0.0)
    return scaled[0]


@register
class SRMap(LRP):
    name = "sr-map"

    def __init__(self, heatmap: str = "channels", **options: Any) -> None:
        """`options`: the saliency step's (ContextSaliency fields) and LRP's (composite, ...)."""
        saliency = {f.name for f in fields(ContextSaliency)}
        super().__init__(**{k: v for k, v in options.items() if k not in saliency})
        if heatmap not in HEATMAPS:
            raise ValueError(f"heatmap must be one of {HEATMAPS}, got {heatmap!r}")
        self.heatmap = heatmap
        self.saliency = ContextSaliency(**{k: v for k, v in options.items() if k in saliency})

    def explain(self, ctx: Context) -> MethodOutput:
        relevance = input_relevance(ctx, self.composite)
        maps = np.empty((len(relevance), *ctx.input_size), np.float32)
        infos = []
        images = tqdm(relevance, desc="context saliency", unit="input", disable=not ctx.progress)
        for i, signed in enumerate(images):
            maps[i], info = context_saliency(relevance_heatmap(signed, self.heatmap), self.saliency)
            infos.append(info)
        metadata = {
            "composite": self.composite.name,
            "heatmap": self.heatmap,
            "relevance_sum": relevance.reshape(len(maps), -1).sum(axis=1, dtype=np.float64),
            "saliency_work_size": [info["work_size"] for info in infos],
            "saliency_patches": [info["patches"] for info in infos],
            "constant_maps": [info["constant"] for info in infos],
            "passes_run": len(ctx.x),
            "passes_skipped": 0,
            "passes_per_input": [1] * len(ctx.x),
            "backward_graph": "relevance",
        }
        return MethodOutput(np.abs(relevance).sum(axis=1), maps, None, metadata, relevance)
