"""Is a challenger better than the champion on the same test rows? One paired, two-sided rule.

Both models predict the same rows, so every comparison is paired, and every one is
two-sided at one level: a test of "no difference" at ``alpha``, and the ``1 - alpha``
interval of the difference. The difference is signed so that positive means the
challenger is better, for losses too.

- **Accuracy**: McNemar's exact test. Of the rows exactly one model gets right, ``b`` are
  the challenger's and ``c`` the champion's; with no difference ``b ~ Binomial(b + c, 1/2)``,
  and ``p = min(1, 2 min(P(X <= b), P(X >= b)))``. The interval is the Clopper-Pearson
  interval of the challenger's share ``pi`` of those rows, as a difference of accuracies,
  ``(b + c)(2 pi - 1) / n``. It is the same computation inverted, so the two never
  disagree: the interval leaves out 0 exactly when ``p < alpha``.
- **Every other metric** (ROC AUC, log loss, F1, ...): a paired permutation test. With no
  difference the two models are exchangeable on every row, so swapping their predictions
  (probability and threshold together) on any set of rows leaves the difference's
  distribution as it was: ``p = (1 + #{|d_swapped| >= |d|}) / (R + 1)`` over ``R`` random
  swaps, or over every swap when the rows are few. The interval is the paired stratified
  bootstrap's percentile interval (:mod:`tunefleet.intervals`). Two computations, so
  near the edge they can disagree; the gate then asks for both (:mod:`tunefleet.pipeline.gate`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from tunefleet.intervals import N_RESAMPLES, Interval, paired_lifts, percentile_interval, scorer_for, stratified_indices
from tunefleet.metrics import binary_metrics, lift, multiclass_metrics

ALPHA = 0.05
MCNEMAR_METRICS = frozenset({"accuracy"})
EXACT_UP_TO = 12  # rows: every one of the 2**n swaps is tried (4,096), not a random R of them


@dataclass(frozen=True)
class Comparison:
    metric: str  # without prefix, e.g. "roc_auc"
    challenger: float
    champion: float
    interval: Interval  # of the difference (challenger better: > 0), two-sided at 1 - alpha
    p_value: float  # two-sided: H0 "no difference"
    test: str
    alpha: float = ALPHA

    @property
    def difference(self) -> float:
        return lift(self.challenger, self.champion, self.metric)

    @property
    def level(self) -> float:
        return 1 - self.alpha

    def describe(self) -> str:
        return (
            f"test {self.metric} {self.challenger:.4f} vs {self.champion:.4f}: difference {self.difference:+.4f}, "
            f"{self.level:.0%} interval [{self.interval.low:+.4f}, {self.interval.high:+.4f}], "
            f"two-sided p={self.p_value:.3g} ({self.test})"
        )


def _binomial_tail_ge(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, p))


def _binomial_tail_le(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return float(binom.cdf(k, n, p))


def discordant(challenger_right: np.ndarray, champion_right: np.ndarray) -> tuple[int, int]:
    """(b, c): the rows only the challenger gets right, and those only the champion gets right."""
    b = int(np.sum(challenger_right & ~champion_right))
    c = int(np.sum(~challenger_right & champion_right))
    return b, c


def mcnemar_p(challenger_right: np.ndarray, champion_right: np.ndarray) -> float:
    """Two-sided exact McNemar: twice the smaller binomial tail of ``b`` in ``b + c`` at 1/2, at most 1."""
    b, c = discordant(challenger_right, champion_right)
    if b + c == 0:
        return 1.0
    tail = min(_binomial_tail_le(b, b + c, 0.5), _binomial_tail_ge(b, b + c, 0.5))
    return min(1.0, 2 * tail)


def mcnemar_interval(b: int, c: int, n: int, alpha: float = ALPHA) -> Interval:
    """The Clopper-Pearson ``1 - alpha`` interval of the challenger's share of the discordant rows,
    as the difference of the two accuracies over ``n`` rows."""
    from scipy.stats import beta

    m = b + c
    if m == 0:
        return Interval(0.0, 0.0)
    low = 0.0 if b == 0 else float(beta.ppf(alpha / 2, b, m - b + 1))
    high = 1.0 if b == m else float(beta.ppf(1 - alpha / 2, b + 1, m - b))
    return Interval(m * (2 * low - 1) / n, m * (2 * high - 1) / n)


@dataclass(frozen=True)
class Predictions:
    """One model's probabilities on the compared rows, and its own decision threshold (binary)."""

    proba: np.ndarray  # (n, K)
    threshold: float | None

    def labels(self) -> np.ndarray:
        if self.proba.shape[1] == 2:
            return (self.proba[:, 1] >= (0.5 if self.threshold is None else self.threshold)).astype(np.int64)
        return self.proba.argmax(axis=1)

    def cuts(self) -> np.ndarray:
        """The threshold as one value per row, so that a row's prediction can travel with it when swapped."""
        return np.full(len(self.proba), 0.5 if self.threshold is None else self.threshold)


def swap_masks(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Which rows swap their two predictions, one row of the matrix per resample: every one of the
    ``2**n`` subsets when ``n <= EXACT_UP_TO``, else ``n_resamples`` fair coin flips a row."""
    if n <= EXACT_UP_TO:
        return np.array(list(itertools.product([False, True], repeat=n)), dtype=bool).reshape(-1, n)
    return np.random.default_rng(seed).random((n_resamples, n)) < 0.5


def permutation_p(
    metric: str, task: str, y: np.ndarray, challenger: Predictions, champion: Predictions, masks: np.ndarray
) -> float:
    """Two-sided paired permutation p of the metric difference (``masks``: :func:`swap_masks`).

    A swapped row keeps its prediction whole: the probabilities and the threshold of the
    model that made it (a binary metric is scored at a threshold per row)."""

    def value(proba: np.ndarray, cuts: np.ndarray) -> float:
        if task == "binary":
            return binary_metrics(y, proba[:, 1], cuts)[metric]
        return multiclass_metrics(y, proba)[metric]

    a, b, a_cut, b_cut = challenger.proba, champion.proba, challenger.cuts(), champion.cuts()
    observed = lift(value(a, a_cut), value(b, b_cut), metric)
    if math.isnan(observed):
        return math.nan
    swapped = np.array(
        [
            lift(
                value(np.where(m[:, None], b, a), np.where(m, b_cut, a_cut)),
                value(np.where(m[:, None], a, b), np.where(m, a_cut, b_cut)),
                metric,
            )
            for m in masks
        ]
    )
    extreme = int(np.sum(np.abs(swapped) >= abs(observed) - 1e-12))  # ties count against the challenger
    if len(y) <= EXACT_UP_TO:  # every swap was tried: the exact p (the identity is among them)
        return extreme / len(masks)
    return (extreme + 1) / (len(masks) + 1)


def compare(
    metric: str,
    task: str,
    y: np.ndarray,
    challenger: Predictions,
    champion: Predictions,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> Comparison:
    """Compare two models on the same rows, each at its own threshold, two-sided at ``alpha``."""
    score_new, score_old = scorer_for(task, challenger.threshold), scorer_for(task, champion.threshold)
    new_value, old_value = score_new(y, challenger.proba)[metric], score_old(y, champion.proba)[metric]
    if metric in MCNEMAR_METRICS:
        right_new, right_old = challenger.labels() == y, champion.labels() == y
        b, c = discordant(right_new, right_old)
        p, interval = mcnemar_p(right_new, right_old), mcnemar_interval(b, c, len(y), alpha)
        return Comparison(metric, float(new_value), float(old_value), interval, p, "McNemar exact", alpha)
    indices = stratified_indices(y, n_resamples, seed)
    diffs = paired_lifts(score_new, score_old, y, challenger.proba, champion.proba, indices)[metric]
    p = permutation_p(metric, task, y, challenger, champion, swap_masks(len(y), n_resamples, seed))
    interval = percentile_interval(diffs, 1 - alpha)
    return Comparison(metric, float(new_value), float(old_value), interval, p, "paired permutation", alpha)
