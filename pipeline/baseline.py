"""The baseline's numbers for the summary: the logistic-regression candidate the search judged
(:mod:`tunefleet.baseline`), tested on the same rows as the champion, once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tunefleet.candidates import Candidate
from tunefleet.evaluation import SplitScores
from tunefleet.metrics import prefixed
from tunefleet.splits import PreparedData


@dataclass(frozen=True)
class Baseline:
    """The baseline's metrics (``val_*``, ``test_*``), and its test predictions: the paired lift
    intervals and the first promotion's gate compare the champion with them, row by row."""

    metrics: dict[str, float]
    test: SplitScores


def baseline_of(candidate: Candidate, data: PreparedData) -> Baseline:
    """Its validation metrics (on the rows the search selects on) and its test metrics."""
    test = SplitScores.of(candidate.bundle, data, "test")
    metrics = {**prefixed(candidate.val_metrics, "val"), **test.metrics()}
    if candidate.bundle.threshold is not None:
        metrics["threshold"] = candidate.bundle.threshold
    return Baseline({k: float(v) for k, v in metrics.items() if not np.isnan(v)}, test)
