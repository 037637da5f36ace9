"""What the attention methods share: the blocks of the model, head fusion, a token-to-token
matrix's class-token row read on the grid, and the maps made from it."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from onnxcam.engine.graph.attention import Attention
from onnxcam.engine.methods.base import Context, Method, MethodOutput, passes
from onnxcam.engine.postprocess import PostProcess, finish_maps

HEAD_FUSIONS = ("mean", "max", "min")


class AttentionMethod(Method):
    """A method that reads the attention probabilities of a transformer's blocks (found in the
    graph, engine/graph/attention.py) rather than the target layer."""

    uses_layer: ClassVar[bool] = False


def fuse_heads(probabilities: np.ndarray, how: str) -> np.ndarray:
    """(N, heads, T, T) -> (N, T, T) by the mean, max or min over heads."""
    return getattr(probabilities, how)(axis=1)


def class_row(matrix: np.ndarray, block: Attention) -> np.ndarray:
    """The class token's row (token 0) of (N, T, T) over the grid tokens, as (N, h, w); for a
    model without prefix tokens (one that pools its tokens), the mean of all rows."""
    prefix = block.grid.prefix
    row = matrix[:, 0, prefix:] if prefix else matrix.mean(axis=1)
    return row.reshape(len(row), *block.grid.size)


def grid_output(
    raw: np.ndarray, ctx: Context, blocks: list[Attention], runs: str, metadata: dict[str, Any]
) -> MethodOutput:
    """Maps from non-negative (N, h, w) grid maps: resized to the input, min-max normalised."""
    raw = raw.astype(np.float32)
    maps, constant = finish_maps(raw, ctx.input_size, PostProcess())
    metadata |= {
        "blocks": len(blocks),
        "attention": [b.name for b in blocks],
        "grid": list(blocks[0].grid.size),
        "prefix_tokens": blocks[0].grid.prefix,
        "constant_maps": constant.tolist(),
        **passes([1] * len(raw)),
        "pass": runs,
    }
    return MethodOutput(raw, maps, None, metadata)
