"""The attention methods on a ViT-B/16-shaped model (224 px, 12 blocks of width 768, 12 heads,
random weights from the `transformers` package) against torch implementations of the same
formulas (tests/attention_reference.py: eager attention, autograd), same run, same inputs.

Prints one JSON line per method: seconds per image of `explain(method=...)` and of the torch
implementation (forward with the attention probabilities kept, then the rollout, one autograd
backward, or one autograd call per block for LeGrad), their ratio, and the largest difference
of the two raw maps relative to the torch map's largest value.

    python bench/attention.py [--images 2] [--batch 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import attention_reference as ref
from scorecam import best_of, emit
from vit import exported


def torch_maps(model, x: np.ndarray, method: str, targets: np.ndarray) -> np.ndarray:
    """The torch implementation's raw (N, 14, 14) map of `method`."""
    if method == "attention-rollout":
        with torch.no_grad():
            _, attentions, _ = ref.traced(model, x)
        grid = ref.rollout(attentions)[:, 0, 1:]
    else:
        logits, attentions, outputs = ref.traced(model, x)
        chosen = torch.from_numpy(targets)
        if method == "gradient-rollout":
            grid = ref.gradient_rollout(logits, attentions, chosen)[:, 0, 1:]
        else:
            grid = ref.legrad(model, attentions, outputs, chosen, 1, True)
    return grid.detach().numpy().reshape(len(x), 14, 14)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    with exported(args.images, args.batch) as (model, x, explainer):
        for method in ("attention-rollout", "gradient-rollout", "legrad"):
            explainer.explain(x[:1], method)  # builds the method's graphs
            ours = best_of(lambda m=method: explainer.explain(x, m)) / len(x)
            result = explainer.explain(x, method)
            chosen = result.targets
            theirs = best_of(lambda m=method, t=chosen: torch_maps(model, x, m, t)) / len(x)
            want = torch_maps(model, x, method, chosen)
            emit(
                "attention",
                method=method,
                onnxcam_s_per_image=round(ours, 4),
                torch_s_per_image=round(theirs, 4),
                speedup=round(theirs / ours, 2),
                max_difference=float(np.abs(result.raw - want).max() / np.abs(want).max()),
            )


if __name__ == "__main__":
    main()
