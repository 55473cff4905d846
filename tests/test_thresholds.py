"""Decision thresholds chosen on validation probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from tests.cases import binary_case
from tunefleet.thresholds import ThresholdConfig, choose_threshold, threshold_candidates


def _brute_force(y, p, cfg: ThresholdConfig) -> float:
    best = -np.inf
    for t in np.r_[np.unique(p), 1.01]:
        pred = (p >= t).astype(int)
        tp = np.sum((pred == 1) & (y == 1))
        fp = np.sum((pred == 1) & (y == 0))
        fn = np.sum((pred == 0) & (y == 1))
        if cfg.objective == "f1":
            v = skm.f1_score(y, pred, zero_division=0)
        elif cfg.objective == "balanced_accuracy":
            v = skm.balanced_accuracy_score(y, pred)
        else:
            v = -(cfg.fp_cost * fp + cfg.fn_cost * fn)
        best = max(best, v)
        del tp
    return float(best)


def _objective_at(y, p, t, cfg: ThresholdConfig) -> float:
    pred = (p >= t).astype(int)
    if cfg.objective == "f1":
        return float(skm.f1_score(y, pred, zero_division=0))
    if cfg.objective == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y, pred))
    fp = np.sum((pred == 1) & (y == 0))
    fn = np.sum((pred == 0) & (y == 1))
    return float(-(cfg.fp_cost * fp + cfg.fn_cost * fn))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "cfg",
    [
        ThresholdConfig(objective="f1"),
        ThresholdConfig(objective="balanced_accuracy"),
        ThresholdConfig(objective="cost", fp_cost=1, fn_cost=5),
        ThresholdConfig(objective="cost", fp_cost=3, fn_cost=1),
    ],
    ids=["f1", "bal_acc", "cost_fn5", "cost_fp3"],
)
def test_threshold_optimum_equals_brute_force(seed: int, cfg: ThresholdConfig) -> None:
    y, p = binary_case(seed, n=60, ties=seed % 2 == 1)
    t = choose_threshold(y, p, cfg)
    assert _objective_at(y, p, t, cfg) == pytest.approx(_brute_force(y, p, cfg))
    thresholds, values = threshold_candidates(y, p, cfg)
    assert len(thresholds) == len(np.unique(p)) + 1 and values.max() == pytest.approx(_brute_force(y, p, cfg))


def test_fixed_and_search_modes_return_value() -> None:
    y, p = binary_case(0)
    assert choose_threshold(y, p, ThresholdConfig(objective="fixed", value=0.3)) == 0.3
    assert choose_threshold(y, p, ThresholdConfig(mode="search", value=0.7)) == 0.7


def test_cost_objective_moves_threshold() -> None:
    y, p = binary_case(2, n=400)
    cheap_fn = choose_threshold(y, p, ThresholdConfig(objective="cost", fp_cost=5, fn_cost=1))
    costly_fn = choose_threshold(y, p, ThresholdConfig(objective="cost", fp_cost=1, fn_cost=5))
    assert costly_fn < cheap_fn  # missing positives is expensive -> predict positive more often
