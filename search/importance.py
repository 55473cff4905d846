"""Which hyperparameters mattered: Optuna's importance evaluators over a search's finished trials.

Works for every backend because it starts from the backend-neutral records: each
finished trial is replayed into a fresh in-memory study through the space's own
define-by-run sampler (its sampled params enqueued, so the suggest calls record the
exact distributions), then fANOVA (a random-forest functional ANOVA, seeded) and
PED-ANOVA (what makes a trial reach the top 10%) rank the parameters. Conditional
parameters (a second layer's width, SGD's momentum) are ranked only if every
finished trial has them, as Optuna's evaluators require.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import optuna

from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import TrialRecord

MIN_TRIALS = 4


def replay_study(exp: ExperimentConfig, task: str, records: Sequence[TrialRecord]) -> optuna.Study:
    """An in-memory study holding the finished trials, with their distributions and final metric."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if exp.mode == "max" else "minimize")
    sample = exp.sampler(task)
    for record in records:
        value = record.metric(exp.metric)
        if record.status != "finished" or math.isnan(value):
            continue
        study.enqueue_trial(record.params, skip_if_exists=False)
        trial = study.ask()
        sample(trial)
        study.tell(trial, value)
    return study


def importances(
    exp: ExperimentConfig, task: str, records: Sequence[TrialRecord]
) -> tuple[dict[str, dict[str, float]], str | None]:
    """``({"fanova": {param: share}, "ped_anova": {...}}, None)``, or ``({}, why there are none)``."""
    study = replay_study(exp, task, records)
    finished = len(study.trials)
    if finished < MIN_TRIALS:
        return {}, f"{finished} finished trials; importance needs at least {MIN_TRIALS}"
    values = {t.value for t in study.trials}
    if len(values) == 1:  # fANOVA would say "zero total variance in all trees"
        return {}, f"the {finished} finished trials all scored {exp.metric} {values.pop():.4g}: no difference to rank"
    evaluators = {
        "fanova": optuna.importance.FanovaImportanceEvaluator(seed=exp.search.seed),
        "ped_anova": optuna.importance.PedAnovaImportanceEvaluator(),
    }
    out: dict[str, dict[str, float]] = {}
    for name, evaluator in evaluators.items():
        try:
            with warnings.catch_warnings():
                # PED-ANOVA warns about conditional params seen in few trials; the shares say as much
                warnings.simplefilter("ignore")
                ranked = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError) as err:  # e.g. every trial has the same value
            return out, f"{name}: {err}"
        out[name] = {k: float(v) for k, v in ranked.items()}
    return out, None


def top(ranked: dict[str, float], n: int = 3) -> list[tuple[str, float]]:
    return sorted(ranked.items(), key=lambda kv: kv[1], reverse=True)[:n]
