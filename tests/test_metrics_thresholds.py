"""Metrics against scikit-learn; threshold optimum against brute force; calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tunefleet.calibration import fit_temperature, probabilities
from tunefleet.metrics import average_precision, binary_metrics, confusion_matrix, multiclass_metrics, roc_auc
from tunefleet.thresholds import ThresholdConfig, choose_threshold, threshold_candidates


def _binary_case(seed: int, n: int = 200, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.001, 0.999)
    if ties:
        p = np.clip(np.round(p, 1), 0.05, 0.95)
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_binary_metrics_match_sklearn(ties: bool) -> None:
    y, p = _binary_case(0, ties=ties)
    m = binary_metrics(y, p, 0.4)
    pred = (p >= 0.4).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))


def test_multiclass_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 2 * np.eye(4)[y]
    prob = probabilities(logits)
    m = multiclass_metrics(y, prob)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, prob.argmax(1)))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, prob.argmax(1), average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, prob))
    assert np.array_equal(confusion_matrix(y, prob.argmax(1), 4), skm.confusion_matrix(y, prob.argmax(1)))


def test_auc_edge_cases() -> None:
    assert np.isnan(roc_auc(np.ones(4, int), np.linspace(0, 1, 4)))
    assert np.isnan(roc_auc(np.zeros(0, int), np.zeros(0))) and np.isnan(
        average_precision(np.zeros(0, int), np.zeros(0))
    )
    assert average_precision(np.array([0, 1]), np.array([0.2, 0.9])) == 1.0


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
    y, p = _binary_case(seed, n=60, ties=seed % 2 == 1)
    t = choose_threshold(y, p, cfg)
    assert _objective_at(y, p, t, cfg) == pytest.approx(_brute_force(y, p, cfg))
    thresholds, values = threshold_candidates(y, p, cfg)
    assert len(thresholds) == len(np.unique(p)) + 1 and values.max() == pytest.approx(_brute_force(y, p, cfg))


def test_fixed_and_search_modes_return_value() -> None:
    y, p = _binary_case(0)
    assert choose_threshold(y, p, ThresholdConfig(objective="fixed", value=0.3)) == 0.3
    assert choose_threshold(y, p, ThresholdConfig(mode="search", value=0.7)) == 0.7


def test_cost_objective_moves_threshold() -> None:
    y, p = _binary_case(2, n=400)
    cheap_fn = choose_threshold(y, p, ThresholdConfig(objective="cost", fp_cost=5, fn_cost=1))
    costly_fn = choose_threshold(y, p, ThresholdConfig(objective="cost", fp_cost=1, fn_cost=5))
    assert costly_fn < cheap_fn  # missing positives is expensive -> predict positive more often


def test_temperature_scaling_reduces_log_loss() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    logits = 6.0 * (y - 0.5) + rng.normal(0, 4, 500)  # over-confident
    t = fit_temperature(logits, y)
    assert t > 1.5
    assert skm.log_loss(y, probabilities(logits, t)) < skm.log_loss(y, probabilities(logits))


def test_temperature_not_fitted_on_tiny_validation_sets() -> None:
    assert fit_temperature(np.array([-3.0, 4.0]), np.array([0, 1])) == 1.0


def test_temperature_does_not_sharpen_without_bound_on_separated_validation_rows() -> None:
    """Every validation row right: log loss falls as the temperature does, down to the search's bound."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    logits = (2 * y - 1) * rng.uniform(0.5, 3.0, 60)
    assert fit_temperature(logits, y) == 1.0
    flipped = y.copy()
    flipped[:3] = 1 - flipped[:3]  # three wrong rows bound the sharpening: a temperature is fitted again
    assert 0.05 * 1.01 < fit_temperature(logits, flipped) != 1.0


def test_binary_probabilities_are_scipys_expit_to_float_precision_and_never_warn() -> None:
    import warnings

    from scipy.special import expit

    rng = np.random.default_rng(0)
    z = np.concatenate([np.linspace(-800, 800, 20001), rng.normal(0, 8, 100_000), [0.0, -0.0, np.inf, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in exp for large |z|
        prob = probabilities(z)
    normal = z > -709  # below, expit's exp(-z) overflows to 0.0, where this keeps the subnormal value
    np.testing.assert_allclose(prob[normal], expit(z[normal]), rtol=5e-16, atol=0)  # 3 ulps at most, measured
    assert np.all(np.abs(prob[~normal] - expit(z[~normal])) < 1e-307)
    assert prob[-2] == 1.0 and prob[-1] == 0.0 and prob[-4] == 0.5
