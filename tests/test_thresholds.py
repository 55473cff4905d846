"""Decision thresholds chosen on validation probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from tests.cases import binary_case
from tunefleet.thresholds import ThresholdConfig, choose_threshold, threshold_candidates


def _objective_at(y, p, t, cfg: ThresholdConfig) -> float:
    """The objective of deciding at ``t``, computed independently (scikit-learn, or the costs counted)."""
    pred = (p >= t).astype(int)
    if cfg.objective == "accuracy":
        return float(skm.accuracy_score(y, pred))
    if cfg.objective == "f1":
        return float(skm.f1_score(y, pred, zero_division=0))
    if cfg.objective == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y, pred))
    fp = np.sum((pred == 1) & (y == 0))
    fn = np.sum((pred == 0) & (y == 1))
    return float(-(cfg.fp_cost * fp + cfg.fn_cost * fn))


def _brute_force(y, p, cfg: ThresholdConfig) -> float:
    return max(_objective_at(y, p, t, cfg) for t in np.r_[np.unique(p), 1.01])


def _anchor(y, cfg: ThresholdConfig) -> float | None:
    return {"accuracy": 0.5, "balanced_accuracy": float(np.mean(y)), "f1": None}.get(
        cfg.objective, cfg.fp_cost / (cfg.fp_cost + cfg.fn_cost)
    )


def _one_standard_error(y, p, t, ref, cfg: ThresholdConfig) -> float:
    """The standard error of the per-row differences between deciding at ``t`` and at ``ref``, row by row."""
    n_pos, n_neg = int(np.sum(y == 1)), int(np.sum(y == 0))
    total = 0.0
    for yi, pi in zip(y, p, strict=True):
        change = float((pi >= t) == (yi == 1)) - float((pi >= ref) == (yi == 1))
        if cfg.objective == "accuracy":
            weight = 1 / len(y)
        elif cfg.objective == "balanced_accuracy":
            weight = 0.5 / n_pos if yi == 1 else 0.5 / n_neg
        else:
            weight = cfg.fn_cost if yi == 1 else cfg.fp_cost
        total += (change * weight) ** 2
    return float(np.sqrt(total))


CONFIGS = [
    ThresholdConfig(objective="accuracy"),
    ThresholdConfig(objective="f1"),
    ThresholdConfig(objective="balanced_accuracy"),
    ThresholdConfig(objective="cost", fp_cost=1, fn_cost=5),
    ThresholdConfig(objective="cost", fp_cost=3, fn_cost=1),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cfg", CONFIGS, ids=["acc", "f1", "bal_acc", "cost_fn5", "cost_fp3"])
def test_the_threshold_is_the_anchor_unless_the_optimum_beats_it_by_one_standard_error(seed, cfg) -> None:
    """Held to a brute force over every threshold: the candidates' best is the optimum; the chosen
    threshold is the optimum when that beats the objective's anchor by more than one standard error
    of the rows' differences (every rule at the optimum is tried), else it is the anchor."""
    y, p = binary_case(seed, n=60, ties=seed % 2 == 1)
    optimum = _brute_force(y, p, cfg)
    thresholds, values = threshold_candidates(y, p, cfg)
    assert len(thresholds) == len(np.unique(p)) + 1 and values.max() == pytest.approx(optimum)
    chosen, ref = choose_threshold(y, p, cfg), _anchor(y, cfg)
    if ref is None or chosen != pytest.approx(ref):
        assert _objective_at(y, p, chosen, cfg) == pytest.approx(optimum)
    if ref is not None:
        best_rules = [t for t in np.r_[np.unique(p), 1.01] if _objective_at(y, p, t, cfg) == pytest.approx(optimum)]
        beats = any(
            _objective_at(y, p, t, cfg) - _objective_at(y, p, ref, cfg) > _one_standard_error(y, p, t, ref, cfg)
            for t in best_rules
        )
        assert (chosen != pytest.approx(ref)) == beats


def test_a_handful_of_rows_cannot_move_the_threshold() -> None:
    """A calibrated model on 114 rows: the best accuracy threshold is 3 rows better than 0.5, which is
    noise on 114 rows; it stays at 0.5. A model whose scores are all shifted by 0.2 (miscalibrated)
    over 1,000 rows: the data clearly say so, and the threshold moves to the middle of the optimum."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 114)
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.18), 0.001, 0.999)
    cfg = ThresholdConfig(objective="accuracy")
    assert _brute_force(y, p, cfg) > _objective_at(y, p, 0.5, cfg)  # an optimum away from 0.5 exists
    assert choose_threshold(y, p, cfg) == 0.5
    y = rng.integers(0, 2, 1000)
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.18) + 0.2, 0.001, 0.999)  # the best cut is near 0.7
    moved = choose_threshold(y, p, cfg)
    assert 0.6 < moved < 0.8 and _objective_at(y, p, moved, cfg) == pytest.approx(_brute_force(y, p, cfg))


def test_f1_takes_the_middle_of_its_optimal_plateau() -> None:
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.7, 0.9])  # every threshold in (0.2, 0.6] is F1-optimal
    assert choose_threshold(y, p, ThresholdConfig(objective="f1")) == pytest.approx(0.4)


def test_fixed_and_search_modes_return_value() -> None:
    y, p = binary_case(0)
    assert choose_threshold(y, p, ThresholdConfig(objective="fixed", value=0.3)) == 0.3
    assert choose_threshold(y, p, ThresholdConfig(mode="search", value=0.7)) == 0.7


def test_cost_objective_moves_threshold() -> None:
    y, p = binary_case(2, n=400)
    cheap_fn = choose_threshold(y, p, ThresholdConfig(objective="cost", fp_cost=5, fn_cost=1))
    costly_fn = choose_threshold(y, p, ThresholdConfig(objective="cost", fp_cost=1, fn_cost=5))
    assert costly_fn < cheap_fn  # missing positives is expensive -> predict positive more often
