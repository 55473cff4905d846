"""Warm start: earlier searches' finished and stopped trials, checked against today's space, as Optuna trials.

The pipeline reads candidates from MLflow (:class:`Earlier`: sampled params, and the final
metric or, for a trial stopped at a rung, its last report); this module turns each into a
``FrozenTrial`` with the distributions the *current* space gives its params, so TPE models
them like its own trials (Optuna's ``add_trials``): a finished trial as completed, a
stopped one as pruned with its last report as its intermediate value, which is how TPE
ranks its own pruned trials (below every completed one, the later the step the better).
Reading the finished trials alone told TPE only of the survivors of early stopping. A
trial whose params the current space cannot produce (a bound moved, a choice removed, a
parameter added) is dropped, and the count is reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from tunefleet.search.experiment import ExperimentConfig


class _Recorder:
    """Stands in for an Optuna trial: answers each suggest call with a known value, records its distribution."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.distributions: dict[str, BaseDistribution] = {}

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.distributions[name] = CategoricalDistribution(choices)
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        self.distributions[name] = IntDistribution(low, high)
        return int(self.params[name])

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        self.distributions[name] = FloatDistribution(low, high, log=log)
        return float(self.params[name])


@dataclass(frozen=True)
class Earlier:
    """An earlier trial: its sampled params, its value, and the epoch of that value if it was stopped there."""

    params: Mapping[str, Any]
    value: float
    stopped_at: int | None = None  # None: finished, ``value`` is its final metric


def as_trial(
    exp: ExperimentConfig, task: str, params: Mapping[str, Any], value: float, stopped_at: int | None = None
) -> optuna.trial.FrozenTrial | None:
    """A completed trial (a pruned one, reported ``value`` at ``stopped_at``) under the current space,
    or None when the space cannot produce these params."""
    recorder = _Recorder(params)
    try:
        exp.sampler(task)(recorder)
        inside = all(d._contains(d.to_internal_repr(params[name])) for name, d in recorder.distributions.items())
    except (KeyError, ValueError, TypeError):
        return None
    if not inside or set(params) != set(recorder.distributions) or math.isnan(value):
        return None
    kept = {k: params[k] for k in recorder.distributions}
    if stopped_at is not None:
        return optuna.trial.create_trial(
            params=kept, distributions=recorder.distributions, state=optuna.trial.TrialState.PRUNED,
            intermediate_values={stopped_at: value},
        )  # fmt: skip
    return optuna.trial.create_trial(params=kept, distributions=recorder.distributions, value=value)


def warm_trials(
    exp: ExperimentConfig, task: str, candidates: Iterable[Earlier]
) -> tuple[list[optuna.trial.FrozenTrial], int]:
    """(the usable earlier trials, how many were dropped as outside the current space)."""
    kept, dropped = [], 0
    for earlier in candidates:
        trial = as_trial(exp, task, earlier.params, earlier.value, earlier.stopped_at)
        if trial is None:
            dropped += 1
        else:
            kept.append(trial)
    return kept, dropped
