"""Which score is explained: the class (top-1 or given) and its logit or probability."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onnxcam.errors import ArgumentError, TargetError

Target = None | str | int | Sequence[int] | np.ndarray
SCORE_KINDS = ("logit", "prob")


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64."""
    z = np.asarray(x, np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def resolve_targets(target: Target, logits: np.ndarray) -> np.ndarray:
    """(N,) class indices from `target`: None or "top1", one index for all, or one per input."""
    n, n_classes = logits.shape
    if target is None or (isinstance(target, str) and target.lower() == "top1"):
        return logits.argmax(axis=1).astype(np.int64)
    if isinstance(target, str):
        try:
            target = int(target)
        except ValueError:
            raise TargetError(f"target must be 'top1' or a class index, got {target!r}") from None
    classes = np.asarray(target)
    if classes.dtype.kind not in "iu" or classes.ndim > 1:
        raise TargetError(f"target must be an integer class index or one per input, got {target!r}")
    classes = np.broadcast_to(classes, (n,)) if classes.ndim == 0 else classes
    if len(classes) != n:
        raise TargetError(f"expected {n} target classes (one per input), got {len(classes)}")
    bad = classes[(classes < 0) | (classes >= n_classes)]
    if len(bad):
        raise TargetError(
            f"class index {int(bad[0])} out of range: the model has {n_classes} classes "
            f"(0..{n_classes - 1})"
        )
    return classes.astype(np.int64)


def class_scores(outputs: np.ndarray, classes: np.ndarray, kind: str = "logit") -> np.ndarray:
    """Score of class classes[i] in row i: the logit itself or its softmax probability."""
    rows = np.arange(len(classes))
    outputs = outputs.reshape(len(outputs), -1)  # (N, C, 1, 1) heads of fully convolutional nets
    if kind == "logit":
        return outputs[rows, classes].astype(np.float64)
    if kind == "prob":
        return softmax(outputs)[rows, classes]
    raise ArgumentError(f"score must be one of {SCORE_KINDS}, got {kind!r}")
