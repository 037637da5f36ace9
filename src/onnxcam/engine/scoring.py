"""Class scores of perturbed inputs: the one interface that methods and metrics score through.

A `Scorer` binds a graph's runner to its class-score output, batch size and progress setting;
`score` sends a `Perturbation` through `Runner.map_batches` and reads, per item, the logit or
the probability of that item's class. Metrics take a Scorer (or anything with a `scorer`, such
as an Explainer), never the Explainer's internals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from onnxcam.engine.model_input import ModelInput
from onnxcam.engine.runner import Perturbation, Runner
from onnxcam.engine.targets import class_scores

#: Called per ORT batch with (start, stop, scores of the batch's items, the raw outputs).
EachBatch = Callable[[int, int, np.ndarray, np.ndarray], None]


@dataclass
class Scorer:
    """Scores of one graph's class-score output, run `batch_size` items at a time."""

    runner: Runner
    output: str
    batch_size: int
    progress: bool = True
    model_input: ModelInput | None = None
    #: The output holds a target's scores (engine/targets.py), read as they are whatever the
    #: method's score kind: a softmax over a target's instances means nothing.
    raw: bool = False

    def validate(self, x: np.ndarray) -> np.ndarray:
        """A user's batch checked and made channels-first (see ModelInput.validate)."""
        if self.model_input is None:
            return x
        return self.model_input.validate(x)

    def score(
        self,
        perturbation: Perturbation,
        classes: np.ndarray,
        kind: str = "logit",
        desc: str = "passes",
        each: EachBatch | None = None,
    ) -> np.ndarray:
        """(n_items,) score of classes[i] for perturbed item i: its logit or probability."""

        def read(out: np.ndarray, start: int, stop: int) -> np.ndarray:
            scores = self.read(out, classes[start:stop], kind)
            if each is not None:
                each(start, stop, scores, out)
            return scores

        return self.runner.map_batches(
            perturbation, self.output, read, self.batch_size, self.progress, desc
        )

    def scores_of(self, x: np.ndarray, classes: np.ndarray, kind: str = "prob") -> np.ndarray:
        """(N,) score of classes[i] for input x[i] (channels-first, as `validate` returns)."""
        (out,) = self.runner.run(x, [self.output], self.batch_size)
        return self.read(out, classes, kind)

    def read(self, out: np.ndarray, classes: np.ndarray, kind: str = "logit") -> np.ndarray:
        """(N,) score of classes[i] in row i of an output: its logit or probability, or a
        target's score as it is (`raw`)."""
        return class_scores(out, classes, "logit" if self.raw else kind)


class HasScorer(Protocol):
    scorer: Scorer


def scorer_of(source: Scorer | HasScorer) -> Scorer:
    """The Scorer itself, or the `scorer` of an object that has one (an Explainer)."""
    return source if isinstance(source, Scorer) else source.scorer
