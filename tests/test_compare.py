"""The paired comparison behind the gate, held to independent computations: binomial sums written
out, every swap of a small example enumerated, the bootstrap redone in a loop."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tunefleet.compare import (
    EXACT_UP_TO,
    Predictions,
    compare,
    discordant,
    mcnemar_interval,
    mcnemar_p,
    swap_masks,
)
from tunefleet.intervals import percentile_interval, stratified_indices
from tunefleet.metrics import binary_metrics


def _binom_pmf(k: int, n: int) -> float:
    return math.comb(n, k) / 2**n


def _rights(b: int, c: int, both: int = 5, neither: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of two models: ``b`` rows only the first gets right, ``c`` only the second."""
    first = [True] * b + [False] * c + [True] * both + [False] * neither
    second = [False] * b + [True] * c + [True] * both + [False] * neither
    return np.array(first), np.array(second)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (7, 2), (2, 7), (10, 10), (15, 4), (30, 18), (0, 9)])
def test_mcnemar_p_is_twice_the_smaller_binomial_tail(b: int, c: int) -> None:
    m = b + c
    lower = sum(_binom_pmf(k, m) for k in range(0, b + 1))
    upper = sum(_binom_pmf(k, m) for k in range(b, m + 1))
    expected = 1.0 if m == 0 else min(1.0, 2 * min(lower, upper))
    assert mcnemar_p(*_rights(b, c)) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert discordant(*_rights(b, c)) == (b, c)


def test_the_mcnemar_interval_is_clopper_pearson_and_agrees_with_its_p_everywhere() -> None:
    """Its ends solve the binomial tail equations (checked with sums written out), and for every
    b, c up to 40 on 120 rows the interval leaves out 0 exactly when p < 0.05."""
    alpha, n = 0.05, 120
    for b, c in [(9, 2), (3, 3), (20, 7)]:
        m, got = b + c, mcnemar_interval(b, c, n, alpha)
        low, high = (got.low * n / m + 1) / 2, (got.high * n / m + 1) / 2  # back to the share of b
        tail_ge = sum(math.comb(m, k) * low**k * (1 - low) ** (m - k) for k in range(b, m + 1))
        tail_le = sum(math.comb(m, k) * high**k * (1 - high) ** (m - k) for k in range(0, b + 1))
        assert tail_ge == pytest.approx(alpha / 2, rel=1e-6) and tail_le == pytest.approx(alpha / 2, rel=1e-6)
    for b, c in itertools.product(range(41), repeat=2):
        right = _rights(b, c, both=n - b - c - 10, neither=10) if b + c <= n - 10 else None
        if right is None:
            continue
        p, interval = mcnemar_p(*right), mcnemar_interval(b, c, n, alpha)
        assert (p < alpha) == (interval.low > 0 or interval.high < 0), (b, c, p, interval)


def _small_case(seed: int = 3, n: int = 10) -> tuple[np.ndarray, Predictions, Predictions]:
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    a, b = rng.random(n) * 0.6 + 0.4 * y, rng.random(n)
    return y, Predictions(np.column_stack([1 - a, a]), 0.5), Predictions(np.column_stack([1 - b, b]), 0.4)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by its definition: the share of (positive, negative) pairs ranked right, ties half."""
    pos, neg = p[y == 1], p[y == 0]
    return float(np.mean([(x > z) + 0.5 * (x == z) for x in pos for z in neg]))


def test_the_permutation_p_is_the_brute_force_share_of_swaps_at_least_as_extreme() -> None:
    """10 rows: every one of the 1,024 ways to swap the two models' predictions, in a plain loop,
    scored by a ROC AUC written from its definition, and by F1 at each row's own threshold."""
    y, new, old = _small_case()
    assert len(y) <= EXACT_UP_TO and len(swap_masks(len(y), 1000, 0)) == 2 ** len(y)
    for metric in ("roc_auc", "f1", "log_loss"):
        diffs = []
        for mask in itertools.product([False, True], repeat=len(y)):  # the first: no row swapped
            m = np.array(mask)
            pa = np.where(m, old.proba[:, 1], new.proba[:, 1])
            pb = np.where(m, new.proba[:, 1], old.proba[:, 1])
            if metric == "roc_auc":
                diffs.append(_auc(y, pa) - _auc(y, pb))
            elif metric == "log_loss":  # lower is better: the difference is signed so that > 0 favours pa
                la = np.mean(-np.log(np.where(y == 1, pa, 1 - pa)))
                lb = np.mean(-np.log(np.where(y == 1, pb, 1 - pb)))
                diffs.append(lb - la)
            else:  # each row at the threshold of the model that predicted it
                ca = np.where(m, old.threshold, new.threshold)
                cb = np.where(m, new.threshold, old.threshold)
                diffs.append(binary_metrics(y, pa, ca)["f1"] - binary_metrics(y, pb, cb)["f1"])
        expected = np.mean(np.abs(diffs) >= abs(diffs[0]) - 1e-12)
        got = compare(metric, "binary", y, new, old)
        assert got.p_value == pytest.approx(expected, abs=1e-12), metric
        assert got.test == "paired permutation" and len(diffs) == 1024


def test_the_interval_is_the_percentile_of_paired_resamples_redone_in_a_loop() -> None:
    rng = np.random.default_rng(0)
    n = 60
    y = (rng.random(n) < 0.4).astype(np.int64)
    a, b = np.clip(0.5 * y + 0.5 * rng.random(n), 0.01, 0.99), rng.random(n)
    new, old = Predictions(np.column_stack([1 - a, a]), 0.5), Predictions(np.column_stack([1 - b, b]), 0.5)
    got = compare("roc_auc", "binary", y, new, old, n_resamples=300, seed=7)
    diffs = [_auc(y[idx], a[idx]) - _auc(y[idx], b[idx]) for idx in stratified_indices(y, 300, 7)]
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    assert (got.interval.low, got.interval.high) == pytest.approx((lo, hi), abs=1e-12)
    assert percentile_interval(np.array(diffs), 0.9).low > lo  # a 90% interval is narrower: the level is used
    assert got.describe().endswith("two-sided p=" + f"{got.p_value:.3g}" + " (paired permutation)")
