"""Bootstrap confidence intervals for test metrics, and for the lift over a baseline.

A test split of ~100 rows moves accuracy by several points between resamples, so every
reported test metric carries a 95% interval. Resamples are *stratified* (each class is
resampled within itself, so every resample has the split's class counts and ROC AUC is
always defined) and drawn at once as an ``(R, n)`` index matrix from a seeded generator;
each resample is scored with the same metric functions as the point estimate. The lift
interval is *paired*: tuned model and baseline are scored on the same resampled rows, so
the noise they share (which rows are hard) cancels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tunefleet.metrics import binary_metrics, lift, multiclass_metrics

N_RESAMPLES, LEVEL, SEED = 1000, 0.95, 0

Scorer = Callable[[np.ndarray, np.ndarray], dict[str, float]]  # (y, proba rows) -> metrics


def stratified_indices(y: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """An ``(n_resamples, len(y))`` matrix of row indices, each row a stratified resample of ``y``."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    blocks = []
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        blocks.append(rows[rng.integers(0, len(rows), size=(n_resamples, len(rows)))])
    return np.concatenate(blocks, axis=1)


def scorer_for(task: str, threshold: float | None) -> Scorer:
    """The metric function of a task, on (labels, probability rows) of one resample."""
    if task == "binary":
        cut = 0.5 if threshold is None else threshold
        return lambda y, proba: binary_metrics(y, proba[:, 1] if proba.ndim == 2 else proba, cut)
    return multiclass_metrics


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> Interval:
    """The central ``level`` interval of bootstrap samples (non-finite ones left out)."""
    tail = (1 - level) / 2 * 100
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"))
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(low), float(high))


def resampled(score: Scorer, y: np.ndarray, proba: np.ndarray, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric on every resample: ``{name: (R,) values}``."""
    rows = [score(y[idx], proba[idx]) for idx in indices]
    return {name: np.array([r[name] for r in rows]) for name in rows[0]}


def metric_intervals(
    score: Scorer,
    y: np.ndarray,
    proba: np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Interval]:
    """Percentile bootstrap interval of each metric."""
    return _intervals(resampled(score, y, proba, stratified_indices(y, n_resamples, seed)), level)


def metric_and_lift_intervals(
    score: Scorer,
    baseline_score: Scorer,
    y: np.ndarray,
    proba: np.ndarray,
    baseline_proba: np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """``metric_intervals`` of the model, and the paired interval of ``lift(model, baseline)``
    per metric (both scored on the same resampled rows): the model is scored once."""
    indices = stratified_indices(y, n_resamples, seed)
    ours = resampled(score, y, proba, indices)
    lifts = lifts_of(ours, resampled(baseline_score, y, baseline_proba, indices))
    return _intervals(ours, level), _intervals(lifts, level)


def _intervals(samples: dict[str, np.ndarray], level: float) -> dict[str, Interval]:
    return {name: percentile_interval(values, level) for name, values in samples.items()}


def paired_lifts(
    score: Scorer, other_score: Scorer, y: np.ndarray, proba: np.ndarray, other_proba: np.ndarray, indices: np.ndarray
) -> dict[str, np.ndarray]:
    """Per metric, ``lift(model, other)`` on each resample, both models scored on the same resampled rows."""
    return lifts_of(resampled(score, y, proba, indices), resampled(other_score, y, other_proba, indices))


def lifts_of(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per metric both score, ``lift(ours, theirs)`` resample by resample."""
    return {
        name: np.array([lift(a, b, name) for a, b in zip(ours[name], theirs[name], strict=True)])
        for name in ours
        if name in theirs
    }
