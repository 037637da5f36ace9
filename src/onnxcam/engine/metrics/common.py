"""What every metric shares: input checks and the class probability of a batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from onnxcam.engine.targets import class_scores

if TYPE_CHECKING:
    from onnxcam.api import Explainer


def check_inputs(x: np.ndarray, maps: np.ndarray, classes: np.ndarray) -> None:
    """Maps (N, *S) and classes (N,) must match inputs (N, C, *S)."""
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"expected maps of shape {(x.shape[0], *x.shape[2:])}, got {maps.shape}")
    if classes.shape != (x.shape[0],):
        raise ValueError(f"expected {x.shape[0]} classes, got shape {classes.shape}")


def probabilities(explainer: Explainer, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N,) softmax probability of classes[i] for input i, one batched run."""
    logits, _ = explainer.forward(x.astype(explainer.input_dtype, copy=False))
    return class_scores(logits, classes, "prob")


def score_items(explainer: Explainer, perturbation, item_classes: np.ndarray, desc: str):
    """Class probability of every perturbed input, through `Runner.map_batches`."""
    return explainer.runner.map_batches(
        perturbation,
        explainer.logits_name,
        lambda out, lo, hi: class_scores(out, item_classes[lo:hi], "prob"),
        explainer.batch_size,
        explainer.progress,
        desc=desc,
    )


def fraction_list(fractions) -> np.ndarray:
    """Fractions in [0, 1) as a float array, with a clear error for anything else."""
    values = np.asarray(fractions, np.float64).ravel()
    if len(values) == 0 or not np.all((values >= 0) & (values < 1)):
        raise ValueError(f"fractions must be non-empty and in [0, 1), got {list(values)}")
    return values
