"""Is a challenger better than the champion on the same test rows? A paired comparison.

Both models predict the same rows, so the test is paired: McNemar's exact test on the
rows where exactly one of them is right (accuracy), and a paired stratified bootstrap of
the metric difference for everything else (ROC AUC, log loss, F1, ...). The difference
is signed so that positive means the challenger is better, for losses too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tunefleet.intervals import (
    LEVEL,
    N_RESAMPLES,
    Interval,
    paired_lifts,
    percentile_interval,
    scorer_for,
    stratified_indices,
)
from tunefleet.metrics import lift

MCNEMAR_METRICS = frozenset({"accuracy"})


@dataclass(frozen=True)
class Comparison:
    metric: str  # without prefix, e.g. "roc_auc"
    challenger: float
    champion: float
    interval: Interval  # of the difference (challenger better: > 0)
    p_value: float  # one-sided: H0 "the challenger is not better"
    test: str

    @property
    def difference(self) -> float:
        return lift(self.challenger, self.champion, self.metric)

    def describe(self) -> str:
        return (
            f"test {self.metric} {self.challenger:.4f} vs {self.champion:.4f}: difference {self.difference:+.4f}, "
            f"{LEVEL:.0%} interval [{self.interval.low:+.4f}, {self.interval.high:+.4f}], p={self.p_value:.3g} ({self.test})"
        )


def mcnemar_p(challenger_right: np.ndarray, champion_right: np.ndarray) -> float:
    """One-sided exact McNemar: P(at least b of the b+c discordant rows favour the challenger | no difference)."""
    from scipy.stats import binomtest

    b = int(np.sum(challenger_right & ~champion_right))
    c = int(np.sum(~challenger_right & champion_right))
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5, alternative="greater").pvalue)


@dataclass(frozen=True)
class Predictions:
    """One model's probabilities on the compared rows, and its own decision threshold (binary)."""

    proba: np.ndarray  # (n, K)
    threshold: float | None

    def labels(self) -> np.ndarray:
        if self.proba.shape[1] == 2:
            return (self.proba[:, 1] >= (0.5 if self.threshold is None else self.threshold)).astype(np.int64)
        return self.proba.argmax(axis=1)


def compare(
    metric: str,
    task: str,
    y: np.ndarray,
    challenger: Predictions,
    champion: Predictions,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Comparison:
    """Compare two models on the same rows, each at its own threshold."""
    score_new, score_old = scorer_for(task, challenger.threshold), scorer_for(task, champion.threshold)
    new_value, old_value = score_new(y, challenger.proba)[metric], score_old(y, champion.proba)[metric]
    indices = stratified_indices(y, n_resamples, seed)
    diffs = paired_lifts(score_new, score_old, y, challenger.proba, champion.proba, indices)[metric]
    if metric in MCNEMAR_METRICS:
        p, test = mcnemar_p(challenger.labels() == y, champion.labels() == y), "McNemar exact"
    else:
        p, test = float((np.sum(diffs <= 0) + 1) / (len(diffs) + 1)), "paired bootstrap"
    return Comparison(metric, float(new_value), float(old_value), percentile_interval(diffs, level), p, test)
