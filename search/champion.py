"""Which model a search hands over: its best finished trial, an ensemble of its trials, or the baseline.

Each candidate is judged on the rows the search selects on, the validation split or the
out-of-fold rows (:mod:`tunefleet.candidates`), by the search's metric; a tie goes to the
simpler one. The ensemble (:mod:`tunefleet.ensemble`) draws on every finished trial and on
the logistic-regression baseline (:mod:`tunefleet.baseline`), whose fold models were fitted
beside the trials. No test row is read here; the pipeline tests the champion once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tunefleet.bundle import ModelBundle
from tunefleet.candidates import Candidate, Verdict, best_of, scored
from tunefleet.ensemble import ensemble
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import PREDICTIONS, TrialRecord
from tunefleet.splits import PreparedData

POOL = 50  # the ensemble draws on the best this many trials (and the baseline)


def trial_candidates(exp: ExperimentConfig, data: PreparedData, records: Sequence[TrialRecord]) -> list[Candidate]:
    """The finished trials that left a bundle and their validation predictions, best first, at most :data:`POOL`."""
    finished = [
        r for r in records if r.status == "finished" and r.bundle_dir and (Path(r.bundle_dir) / PREDICTIONS).is_file()
    ]
    sign = -1 if exp.mode == "max" else 1
    finished.sort(key=lambda r: (math.isnan(r.metric(exp.metric)), sign * r.metric(exp.metric), r.trial_id))
    return [_trial(r.trial_id, Path(r.bundle_dir), exp, data) for r in finished[:POOL] if r.bundle_dir]


def _trial(trial_id: str, bundle_dir: Path, exp: ExperimentConfig, data: PreparedData) -> Candidate:
    """A finished trial as a candidate: its bundle, its validation predictions, its own threshold."""
    proba = np.load(bundle_dir / PREDICTIONS)
    return scored("trial", trial_id, ModelBundle.load(bundle_dir), proba, data, exp.threshold, tune=False)


def choose(
    exp: ExperimentConfig, data: PreparedData, records: Sequence[TrialRecord], baseline: Candidate
) -> Verdict | None:
    """The champion among the trials, their ensemble and the baseline (None: no trial finished)."""
    trials = trial_candidates(exp, data, records)
    if not trials:
        return None
    pool = [*trials, baseline]
    rounds = exp.candidates.ensemble
    blend = ensemble(pool if exp.candidates.baseline else trials, data, exp.threshold, rounds)
    contenders = [*trials, *([baseline] if exp.candidates.baseline else []), *([blend] if blend else [])]
    return Verdict(best_of(contenders, exp.metric, exp.mode), tuple([*trials, baseline, *([blend] if blend else [])]))
