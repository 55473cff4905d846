"""What a search can register, judged alike: a trial, an ensemble of trials, or the baseline.

Every candidate is scored on the same rows, the ones the search selects on: the
validation split, or under cross-validation every train + validation row, predicted by the
fold model that did not train on it (out-of-fold). Each has its own threshold, chosen on
those rows (:func:`tunefleet.thresholds.choose_threshold`), and the search's metric decides.
Test rows are touched by none of this: the pipeline tests the one chosen, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from tunefleet.bundle import ModelBundle
from tunefleet.metrics import better, binary_metrics, multiclass_metrics
from tunefleet.splits import PreparedData
from tunefleet.thresholds import ThresholdConfig, choose_threshold

Kind = Literal["trial", "ensemble", "baseline"]
SIMPLER_FIRST: tuple[Kind, ...] = ("baseline", "trial", "ensemble")  # who wins a tie


@dataclass(frozen=True)
class Candidate:
    kind: Kind
    name: str  # a trial id, "ensemble" or "baseline"
    bundle: ModelBundle
    val_probabilities: np.ndarray  # calibrated: (n,) positive class, or (n, K)
    val_metrics: dict[str, float]  # on those rows, at its threshold (unprefixed names: "accuracy")
    weights: dict[str, float] | None = None  # an ensemble's: candidate name -> its share

    @property
    def key(self) -> str:
        """What the model is, in one string: a trial id, ``baseline``, or an ensemble's members and shares."""
        if self.weights is None:
            return self.name
        return "ensemble(" + ",".join(f"{name}:{share:.3f}" for name, share in sorted(self.weights.items())) + ")"

    def describe(self) -> str:
        """A line for people: which model this is."""
        if self.kind == "baseline":
            return "the logistic-regression baseline"
        if self.weights is None:
            return f"trial {self.name}"
        shares = ", ".join(f"{name} {share:.2f}" for name, share in sorted(self.weights.items(), key=lambda kv: -kv[1]))
        return f"an ensemble of {len(self.weights)} ({shares})"


@dataclass(frozen=True)
class Verdict:
    """The chosen candidate, and every candidate it was chosen from (the summary compares them)."""

    champion: Candidate
    candidates: tuple[Candidate, ...]


def validation_labels(data: PreparedData) -> np.ndarray:
    """The rows candidates are judged on: out-of-fold (fold order) under cross-validation, else validation."""
    return np.concatenate([fold.y_val for fold in data.folds]) if data.folds else np.asarray(data.y_val)


def scored(
    kind: Kind, name: str, bundle: ModelBundle, proba: np.ndarray, data: PreparedData, threshold: ThresholdConfig,
    weights: dict[str, float] | None = None, tune: bool = True,
) -> Candidate:  # fmt: skip
    """A candidate judged on the validation rows: its threshold chosen there (``tune``: else the bundle's), and its metrics."""
    y = validation_labels(data)
    if data.task != "binary":
        return Candidate(kind, name, replace(bundle, kind=kind), proba, multiclass_metrics(y, proba), weights)
    cut = choose_threshold(y, proba, threshold) if tune else bundle.decision_threshold
    metrics = binary_metrics(y, proba, cut)
    return Candidate(kind, name, replace(bundle, threshold=cut, kind=kind), proba, metrics, weights)


def best_of(candidates: Sequence[Candidate], metric: str, mode: str) -> Candidate:
    """The best by the search's metric on the validation rows; a tie goes to the simpler kind, then the name."""
    name = metric.removeprefix("val_")
    ranked = sorted(candidates, key=lambda c: (SIMPLER_FIRST.index(c.kind), c.name))
    best = ranked[0]
    for candidate in ranked[1:]:
        if better(candidate.val_metrics.get(name, np.nan), best.val_metrics.get(name, np.nan), mode):
            best = candidate
    return best
