"""Which layer explains a box when the user says `--layer auto`: the feature map through which
the box's score flows most.

A multi-scale detector predicts each box at one scale and splits its head there into a box
branch and a class branch; the map `auto` finds walking back from the output is one branch at
one scale, whose gradient for a box seen at another scale is zero. For a box target `auto`
takes instead, among the feature maps that convolutions read (graph.prediction_features),
the last in graph order that the box's score reaches: whose first-order share of it,
|sum(dS/dA * A)| over the batch, is at least REACHED of the largest. The maps of other scales
and the branches after them carry none of it; the maps before the detection's branch (the
neck, the backbone) carry all of it but come earlier. One backward pass over the model, on
the unperturbed inputs.
"""

from __future__ import annotations

import numpy as np
import onnx

from onnxcam.engine import backward, graph
from onnxcam.engine.runner import Runner
from onnxcam.errors import LayerError

#: Share of the largest contribution above which the box's score reaches a layer (float32
#: sums of layers it does not reach are exactly 0).
REACHED = 1e-3


def contributions(
    model: onnx.ModelProto,
    scores: str,
    x: np.ndarray,
    rows: np.ndarray,
    session_args: tuple,
    batch_size: int,
) -> dict[str, float]:
    """|sum(dS/dA * A)| summed over inputs, per candidate layer A (in graph order), for S the
    (N, M) `scores` read at one-hot `rows`."""
    info = graph.ModelInfo(model)
    names = graph.prediction_features(info)
    if not names:
        raise LayerError("no feature map that a convolution reads: name the layer (--layer)")
    try:
        swept = backward.build(model, backward.GRADIENT, [scores], names, [scores, *names])
    except backward.BackwardError as err:
        raise LayerError(
            f"--layer auto chooses a box's layer by its gradient: {err}; expected a layer "
            "named (--layer)"
        ) from None
    runner = Runner(swept, *session_args, input_name=graph.model_input(model).name)
    wanted = [graph.exposed_name(model, n) for n in names]
    wanted += [backward.grad_name(n) for n in names]
    values = runner.run(x, wanted, batch_size, runner.seed_feeds({scores: rows}))
    forward, grads = values[: len(names)], values[len(names) :]
    return {
        name: float(np.abs((a.astype(np.float64) * g).reshape(len(a), -1).sum(axis=1)).sum())
        for name, a, g in zip(names, forward, grads, strict=True)
    }


def last_reached(shares: dict[str, float]) -> str:
    """The last layer in graph order that the box's score reaches."""
    top = max(shares.values())
    return [name for name, value in shares.items() if value >= REACHED * top][-1]
