"""Salient Relevance map (Li et al., arXiv 1712.08268, algorithms §2.18): LRP, then context-aware
saliency on the relevance image."""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm.auto import tqdm

from onnxcam.engine.context_saliency import ContextSaliency, context_saliency
from onnxcam.engine.methods.base import Context, MethodOutput, passes
from onnxcam.engine.methods.parts.relevance import RelevanceMethod
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice
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
class SRMap(RelevanceMethod, ContextSaliency):
    """Salient Relevance map (Li, Tian, Mueller, Chen, arXiv 1712.08268): LRP, then
    context-aware saliency (Goferman et al., CVPR 2010) on the relevance heatmap.

    The input relevance becomes |R| in [0, 1] (one min-max over all channels and samples, as
    the SR code does before saving it; `heatmap="sum"` sums |R| over channels first), and
    context-aware saliency turns it into the map. Options: LRP's, `heatmap`, and those of the
    saliency step. The SR code's own rules are `composite="sr-official"`.
    """

    name = "sr-map"
    passes = "1 relevance pass + CPU patch search"

    heatmap: str = choice("channels", HEATMAPS, "|R| per channel or summed", what="heatmap")

    @property
    def saliency(self) -> ContextSaliency:
        """The saliency step's options, as this method was given them."""
        names = [f.name for f in dataclasses.fields(ContextSaliency)]
        return ContextSaliency(**{name: getattr(self, name) for name in names})

    def explain(self, ctx: Context) -> MethodOutput:
        relevance, metadata = self.input_relevance(ctx)
        maps = np.empty((len(relevance), *ctx.input_size), np.float32)
        infos = []
        saliency = self.saliency
        images = tqdm(relevance, desc="context saliency", unit="input", disable=not ctx.progress)
        for i, signed in enumerate(images):
            maps[i], info = context_saliency(relevance_heatmap(signed, self.heatmap), saliency)
            infos.append(info)
        metadata |= {
            "heatmap": self.heatmap,
            "saliency_work_size": [info["work_size"] for info in infos],
            "saliency_patches": [info["patches"] for info in infos],
            "constant_maps": [info["constant"] for info in infos],
            **passes([1] * len(ctx.x)),
            "backward_graph": "relevance",
        }
        return MethodOutput(np.abs(relevance).sum(axis=1), maps, None, metadata, relevance)
