"""Bootstrap intervals: stratified resamples, equal to a brute-force bootstrap, paired lifts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tunefleet.intervals import (
    metric_and_lift_intervals,
    metric_intervals,
    paired_lifts,
    percentile_interval,
    scorer_for,
    stratified_indices,
)


def _toy(n: int = 120, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int64)
    good = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.25, n), 0.01, 0.99)
    weak = np.clip(0.5 + (y - 0.5) * 0.2 + rng.normal(0, 0.25, n), 0.01, 0.99)
    return y, good, weak


def test_resamples_are_stratified_and_seeded() -> None:
    y, _, _ = _toy()
    idx = stratified_indices(y, n_resamples=50, seed=1)
    assert idx.shape == (50, len(y))
    assert (y[idx].sum(axis=1) == y.sum()).all()  # every resample keeps the class counts
    assert np.array_equal(idx, stratified_indices(y, n_resamples=50, seed=1))
    assert not np.array_equal(idx, stratified_indices(y, n_resamples=50, seed=2))


def test_interval_equals_a_brute_force_bootstrap_with_sklearn() -> None:
    """Same seed, same resamples: a plain loop scoring each with scikit-learn gives the same percentiles."""
    y, p, _ = _toy()
    ours = metric_intervals(scorer_for("binary", 0.4), y, p, n_resamples=400, seed=7)
    rng = np.random.default_rng(7)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    draws = {c: rows[rng.integers(0, len(rows), size=(400, len(rows)))] for c, rows in ((0, neg), (1, pos))}
    acc, auc, f1 = [], [], []
    for r in range(400):
        rows = np.concatenate([draws[0][r], draws[1][r]])
        yt, pt = y[rows], p[rows]
        acc.append(skm.accuracy_score(yt, pt >= 0.4))
        auc.append(skm.roc_auc_score(yt, pt))
        f1.append(skm.f1_score(yt, pt >= 0.4))
    for name, values in (("accuracy", acc), ("roc_auc", auc), ("f1", f1)):
        low, high = np.percentile(values, [2.5, 97.5])
        assert ours[name].low == pytest.approx(low, abs=1e-9), name
        assert ours[name].high == pytest.approx(high, abs=1e-9), name
        assert ours[name].low < np.mean(values) < ours[name].high


def test_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    """Coverage on a known population: accuracy of a fixed rule on fresh samples of 200 rows."""
    rng = np.random.default_rng(0)
    true_acc, hits, runs = 0.8, 0, 200

    def accuracy_only(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
        return {"accuracy": float(((p >= 0.5) == y).mean())}

    for run in range(runs):
        y = (rng.random(200) < 0.5).astype(np.int64)
        correct = rng.random(200) < true_acc
        p = np.where(correct, y, 1 - y).astype(float) * 0.8 + 0.1
        interval = metric_intervals(accuracy_only, y, p, n_resamples=400, seed=run)["accuracy"]
        hits += interval.contains(true_acc)
    assert 0.88 <= hits / runs <= 0.99


def test_paired_lift_is_narrower_than_unpaired_and_signed() -> None:
    y, good, weak = _toy(300)
    score = scorer_for("binary", 0.5)
    paired = metric_and_lift_intervals(score, score, y, good, weak, n_resamples=1000, seed=0)[1]["roc_auc"]
    assert paired.low > 0  # the good model is better, and the interval says so
    a = metric_intervals(score, y, good, n_resamples=1000, seed=0)["roc_auc"]
    b = metric_intervals(score, y, weak, n_resamples=1000, seed=0)["roc_auc"]
    assert paired.high - paired.low < (a.high - a.low) + (b.high - b.low)
    same = metric_and_lift_intervals(score, score, y, good, good, n_resamples=200, seed=0)[1]["roc_auc"]
    assert same.low == same.high == 0.0
    losses = metric_and_lift_intervals(score, score, y, good, weak, n_resamples=200, seed=0)[1]["log_loss"]
    assert losses.low > 0  # a lower loss is a positive lift


def test_both_intervals_at_once_equal_each_alone() -> None:
    """The summary's intervals score the model once on the resamples both draw: the same numbers."""
    y, good, weak = _toy(120)
    ours, theirs = scorer_for("binary", 0.4), scorer_for("binary", 0.6)
    metrics, lifts = metric_and_lift_intervals(ours, theirs, y, good, weak, n_resamples=300, seed=3)
    assert metrics == metric_intervals(ours, y, good, n_resamples=300, seed=3)
    alone = paired_lifts(ours, theirs, y, good, weak, stratified_indices(y, 300, 3))
    assert lifts == {name: percentile_interval(values) for name, values in alone.items()}


def test_multiclass_intervals() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 150)
    proba = rng.dirichlet(np.ones(3), 150)
    proba[np.arange(150), y] += 0.3
    proba /= proba.sum(axis=1, keepdims=True)
    out = metric_intervals(scorer_for("multiclass", None), y, proba, n_resamples=300)
    assert set(out) == {"loss", "accuracy", "macro_f1", "log_loss"}
    assert 0 < out["accuracy"].low < out["accuracy"].high <= 1
