"""Which layer explains a box when the user says `--layer auto`: the feature map through which
the box's score flows most.

A multi-scale detector predicts each box at one scale and splits its head there into a box
branch and a class branch; the map `auto` finds walking back from the output is one branch at
one scale, whose gradient for a box seen at another scale is zero. For a box target `auto`
takes instead, among the feature maps that convolutions read (graph.prediction_features),
the last in graph order whose first-order share of the target's score, |sum(dS/dA * A)| over
the batch, reaches SHARE of the largest: the branch and scale that the detection came from
(a map before it, such as the neck output under both branches, holds their sum). One backward
pass over the model, on the unperturbed inputs.
"""

from __future__ import annotations

import numpy as np
import onnx

from onnxcam.engine import backward, graph
from onnxcam.engine.runner import Runner
from onnxcam.errors import LayerError

#: Share of the largest contribution a nearer layer needs to be taken.
SHARE = 0.5


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


def strongest(shares: dict[str, float]) -> str:
    """The last layer in graph order whose contribution reaches SHARE of the largest."""
    top = max(shares.values())
    return [name for name, value in shares.items() if value >= SHARE * top][-1]
