"""Greedy ensemble selection (Caruana et al., 2004) over candidates' validation predictions.

Forward selection with replacement: start from nothing and, each round, add the candidate
(a trial or the baseline; one may be added again) whose addition gives the average of the
chosen members' probabilities the lowest log loss on the validation rows (out-of-fold under
cross-validation), keeping the round with the lowest loss seen. A candidate's share is how
often it was added. Log loss, not the search's metric, drives it: it is smooth, so a round
is decided by the probabilities of every row and not by the few rows near a threshold.

The members are trained already (the trials' models, or their fold models), so an ensemble
costs a few matrix averages. Its bundle averages its members' networks, each weighted by its
candidate's share (:class:`tunefleet.bundle.ModelBundle`), and its threshold is chosen like
any candidate's, on its own validation probabilities.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from tunefleet.bundle import bundle_of
from tunefleet.candidates import Candidate, scored, validation_labels
from tunefleet.metrics import log_loss
from tunefleet.splits import PreparedData
from tunefleet.thresholds import ThresholdConfig


def greedy_selection(probas: Sequence[np.ndarray], y: np.ndarray, rounds: int) -> Counter[int]:
    """How many times each of ``probas`` is in the ensemble (its share): Caruana's forward selection."""
    total = np.zeros_like(probas[0], dtype=np.float64)
    chosen: Counter[int] = Counter()
    best_loss, best = np.inf, Counter[int]()
    for size in range(1, rounds + 1):
        losses = [log_loss(y, (total + p) / size) for p in probas]
        pick = int(np.argmin(losses))  # ties: the first (candidates come best first)
        total += probas[pick]
        chosen[pick] += 1
        if losses[pick] < best_loss - 1e-12:
            best_loss, best = losses[pick], chosen.copy()
    return best


def ensemble(
    candidates: Sequence[Candidate], data: PreparedData, threshold: ThresholdConfig, rounds: int
) -> Candidate | None:
    """The greedy ensemble of ``candidates`` as a candidate (None when it is a single one of them)."""
    if rounds < 1 or len(candidates) < 2:
        return None
    counts = greedy_selection([c.val_probabilities for c in candidates], validation_labels(data), rounds)
    if len(counts) < 2:
        return None
    size = sum(counts.values())
    shares = {candidates[i].name: n / size for i, n in sorted(counts.items())}
    members = tuple(
        replace(m, weight=shares[c.name] * m.weight / sum(x.weight for x in c.bundle.members))
        for c in candidates
        if c.name in shares
        for m in c.bundle.members
    )
    proba = sum(shares[c.name] * c.val_probabilities for c in candidates if c.name in shares)
    bundle = bundle_of(data, members, None, kind="ensemble")
    return scored("ensemble", "ensemble", bundle, np.asarray(proba), data, threshold, weights=shares)
