"""The in-process trial loop: the same space and ``train_one`` in one process, under Optuna's pruner.

What ``--backend optuna`` runs when trials are not batched into cohorts. No Ray: for quick
local runs and as the baseline in benchmarks. Resumable: the study and the ended trials'
records live under ``<storage>/<name>/`` (:mod:`tunefleet.search.study`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import optuna

from tunefleet.cv import train_trial
from tunefleet.search.backends import Lease, SearchRequest
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import SearchObserver, TrialRecord, save_trial_model, tell_observers
from tunefleet.search.schedule import Schedule
from tunefleet.search.study import ended_before, has_study, one_sync, open_study, save_record, seed_study, tell
from tunefleet.splits import PreparedData


class StudyLoop:
    """Optuna's study in this process: ask one config, train it (``train_one``, or its CV folds), tell."""

    def check(self, exp: ExperimentConfig) -> None:
        """Any spec runs here."""

    def can_resume(self, exp: ExperimentConfig, name: str) -> bool:
        return has_study(exp.search.storage_path, name)

    def open(self, exp: ExperimentConfig, data: PreparedData, lease: Lease, *, verbose: bool) -> StudySession:
        return StudySession(exp)


class StudySession:
    def __init__(self, exp: ExperimentConfig) -> None:
        self.exp = exp

    def run(self, request: SearchRequest) -> list[TrialRecord]:
        return run_study(request.exp, request.data, request.path, request.observers, list(request.points), request.warm)


def run_study(
    exp: ExperimentConfig,
    data: PreparedData,
    path: Path,
    observers: tuple[SearchObserver, ...],
    points: list[dict[str, Any]],
    warm: tuple[optuna.trial.FrozenTrial, ...] = (),
) -> list[TrialRecord]:
    """Run (or continue) the study until ``num_samples`` trials have ended.

    Trials run one after another, so each is judged at its rungs against the trials before
    it (:meth:`tunefleet.search.schedule.Schedule.stops`): the search's one schedule.
    """
    study = open_study(exp, path)
    records = ended_before(path, observers)
    seed_study(study, points, warm)
    schedule = Schedule.of(exp)
    schedule.refill(records, exp.metric)
    done = {r.trial_id for r in records}
    sample = exp.sampler(data.task)
    started = time.monotonic()
    while len(done) < exp.search.num_samples:
        if exp.search.time_budget_s and time.monotonic() - started > exp.search.time_budget_s:
            break
        with one_sync(study):
            trial = study.ask()
            sample(trial)
        trial_id = f"optuna_{trial.number:05d}"
        record = _run_trial(exp, data, trial, trial_id, path, schedule)
        tell(study, trial, record, exp.metric)
        save_record(path, record)
        records.append(record)
        done.add(trial_id)
        tell_observers(observers, [record])
    return records


def _run_trial(
    exp: ExperimentConfig, data: PreparedData, trial: optuna.Trial, trial_id: str, path: Path, schedule: Schedule
) -> TrialRecord:
    params = dict(trial.params)
    config = exp.trial_config(params)
    history: list[dict[str, float]] = []
    stopped: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        history.append(metrics)
        value = metrics.get(exp.metric, math.nan)
        if epoch in schedule.rungs and not math.isnan(value):
            trial.report(value, epoch)  # TPE ranks a pruned trial by its last report
            if schedule.stops(trial_id, epoch, value):
                stopped.append(epoch)
                return True
        return False

    started = time.perf_counter()
    error = ""
    for _attempt in range(exp.search.max_failures + 1):
        history.clear()
        stopped.clear()
        try:
            result = train_trial(config, data, report=report)
        except Exception as err:  # noqa: BLE001 - a failed trial is recorded, the search goes on
            error = f"{type(err).__name__}: {err}"
            continue
        if stopped:
            return TrialRecord(
                trial_id, params, config, "stopped", dict(history[-1]), list(history), node_id="local",
                seconds=time.perf_counter() - started,
            )  # fmt: skip
        bundle_dir = save_trial_model(result.bundle, result.val_probabilities, path / "bundles" / trial_id)
        return TrialRecord(
            trial_id, params, config, "finished", dict(result.metrics), result.history, node_id="local",
            bundle_dir=str(bundle_dir), seconds=time.perf_counter() - started,
        )  # fmt: skip
    return TrialRecord(
        trial_id, params, config, "failed", node_id="local", error=error, seconds=time.perf_counter() - started
    )
