"""Which hyperparameters mattered: Optuna's importance evaluators over a search's trials.

Works for every backend because it starts from the backend-neutral records. Under early
stopping most trials end at a rung, and the few that finish are the survivors of the
first rungs, so ranking the finished ones alone would see too few trials, all alike. The
ranking therefore reads the **highest level that enough trials reached**: the finished
trials' final values, else the values at the last rung, the one before it, and so on down
to the first (every trial that trained past it has a value there), and it says which
level it used. At least :data:`MIN_TRIALS` trials must have a value there.

Each trial is rebuilt as a completed Optuna trial through the space's own define-by-run
sampler (:func:`tunefleet.search.warm.as_trial`: the exact distributions), then fANOVA
(a random-forest functional ANOVA, seeded) and PED-ANOVA (what makes a trial reach the top
10%) rank the parameters. A parameter that sets another's field (SGD's ``sgd_lr`` sets
the one ``lr``) is ranked under that name, over both ranges, so the learning rate is
ranked whatever the optimizer. Other conditional parameters (a second layer's width,
SGD's momentum) are ranked only if every trial has them, as Optuna's evaluators require.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution

from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import TrialRecord
from tunefleet.search.schedule import Schedule, rung_value
from tunefleet.search.space import RANKED_AS
from tunefleet.search.warm import as_trial

MIN_TRIALS = 8


@dataclass(frozen=True)
class Importance:
    """The evaluators' shares (``{"fanova": {param: share}, "ped_anova": {...}}``), what they ranked, or why none."""

    shares: dict[str, dict[str, float]] = field(default_factory=dict)
    basis: str = ""  # e.g. "24 trials' values at epoch 5 (the first rung)"
    note: str | None = None  # why there are none


def levels(exp: ExperimentConfig, records: Sequence[TrialRecord]) -> list[tuple[str, dict[str, float]]]:
    """(what it is, trial id -> value), highest first: the finished trials' final values, then each rung's."""
    finished = {r.trial_id: r.metric(exp.metric) for r in records if r.status == "finished"}
    out = [("final values", finished)]
    rungs = sorted(Schedule.of(exp).rungs, reverse=True)
    for i, rung in enumerate(rungs):
        where = "the first rung" if i == len(rungs) - 1 else "a rung"
        out.append(
            (
                f"values at epoch {rung} ({where})",
                {r.trial_id: rung_value(r.history, rung, exp.metric) for r in records},
            )
        )
    return [(name, {t: v for t, v in values.items() if not math.isnan(v)}) for name, values in out]


def replay_study(
    exp: ExperimentConfig, task: str, records: Sequence[TrialRecord], values: Mapping[str, float]
) -> optuna.Study:
    """An in-memory study of the trials in ``values`` (trial id -> value), with their distributions."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if exp.mode == "max" else "minimize")
    trials = [as_trial(exp, task, r.params, values[r.trial_id]) for r in records if r.trial_id in values]
    study.add_trials(_ranked_as_one([t for t in trials if t is not None]))
    return study


def _ranked_as_one(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Each parameter that sets another's field renamed to it, over the union of their ranges."""
    merged: dict[str, BaseDistribution] = {}
    for trial in trials:
        for name, target in RANKED_AS.items():
            for key in (name, target):
                if key in trial.distributions:
                    merged[target] = _union(merged.get(target), trial.distributions[key])
    out = []
    for trial in trials:
        params, dists = dict(trial.params), dict(trial.distributions)
        for name, target in RANKED_AS.items():
            if name in params:
                params[target] = params.pop(name)
                dists.pop(name)
            if target in params:
                dists[target] = merged[target]
        out.append(optuna.trial.create_trial(params=params, distributions=dists, value=trial.value))
    return out


def _union(a: BaseDistribution | None, b: BaseDistribution) -> BaseDistribution:
    if a is None or not isinstance(a, FloatDistribution) or not isinstance(b, FloatDistribution):
        return b if a is None else a
    return FloatDistribution(min(a.low, b.low), max(a.high, b.high), log=a.log and b.log)


def importances(exp: ExperimentConfig, task: str, records: Sequence[TrialRecord]) -> Importance:
    """Both evaluators' shares on the highest level at least :data:`MIN_TRIALS` trials reached."""
    reached = levels(exp, records)
    chosen = next(((name, values) for name, values in reached if len(values) >= MIN_TRIALS), None)
    if chosen is None:
        most = max(len(values) for _, values in reached)
        return Importance(note=f"{most} trials reached a rung or the end; importance needs at least {MIN_TRIALS}")
    name, values = chosen
    basis = f"{len(values)} trials' {name}"
    distinct = set(values.values())
    if len(distinct) == 1:  # fANOVA would say "zero total variance in all trees"
        return Importance(basis=basis, note=f"{basis} are all {exp.metric} {distinct.pop():.4g}: no difference to rank")
    study = replay_study(exp, task, records, values)
    evaluators = {
        "fanova": optuna.importance.FanovaImportanceEvaluator(seed=exp.search.seed),
        "ped_anova": optuna.importance.PedAnovaImportanceEvaluator(),
    }
    out: dict[str, dict[str, float]] = {}
    for evaluator_name, evaluator in evaluators.items():
        try:
            with warnings.catch_warnings():
                # PED-ANOVA warns about conditional params seen in few trials; the shares say as much
                warnings.simplefilter("ignore")
                ranked = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError) as err:  # e.g. every trial has the same value
            return Importance(out, basis, f"{evaluator_name}: {err}")
        out[evaluator_name] = {k: float(v) for k, v in ranked.items()}
    return Importance(out, basis)


def top(ranked: dict[str, float], n: int = 3) -> list[tuple[str, float]]:
    return sorted(ranked.items(), key=lambda kv: kv[1], reverse=True)[:n]
