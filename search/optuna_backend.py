"""``search.backend: optuna``: the same space and ``train_one`` in one process, under Optuna's pruner.

No Ray: for quick local runs and as the baseline in benchmarks. Resumable: the study and
the ended trials' records live under ``<storage>/<name>/`` (:mod:`search.study`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from search.backend import SearchRequest
from search.result import SearchObserver, TrialRecord, tell_observers
from search.space import sampler_for
from search.spec import ExperimentConfig
from search.study import ended_before, has_study, one_sync, open_study, save_record, seed_study, tell
from tunefleet.cv import train_trial
from tunefleet.errors import TunefleetError
from tunefleet.splits import PreparedData


def make_pruner(exp: ExperimentConfig) -> optuna.pruners.BasePruner:
    sched = exp.search.scheduler
    if sched.name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=sched.grace_period, reduction_factor=sched.reduction_factor
        )
    if sched.name == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=sched.grace_period)
    return optuna.pruners.NopPruner()


class OptunaBackend:
    """One process, this machine: no cluster to connect to, so only the GPU ask is checked."""

    def check(self, exp: ExperimentConfig, *, address: str | None) -> None:
        """Nothing to reach: trials run in this process."""

    def can_resume(self, exp: ExperimentConfig, name: str) -> bool:
        return has_study(exp.search.storage_path, name)

    @contextmanager
    def open(
        self, exp: ExperimentConfig, data: PreparedData, *, address: str | None, verbose: bool
    ) -> Iterator[OptunaSession]:
        local_gpu(exp)
        yield OptunaSession(exp)


def local_gpu(exp: ExperimentConfig) -> bool:
    """Whether trials trained in this process have a GPU; one line when the spec asks for one that is not here."""
    import torch

    gpu = torch.cuda.is_available()
    if exp.search.resources.gpus_per_trial > 0 and not gpu:
        raise TunefleetError(
            f"--gpus-per-trial {exp.search.resources.gpus_per_trial:g} asked for, but this machine has no GPU "
            "that torch can use; drop the flag"
        )
    if exp.train.device == "cuda" and not gpu:
        raise TunefleetError("train.device is cuda, but this machine has no GPU that torch can use; leave it at auto")
    return gpu


class OptunaSession:
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
    """Run (or continue) the study until ``num_samples`` trials have ended."""
    study = open_study(exp, path, make_pruner(exp))
    records = ended_before(path, observers)
    seed_study(study, points, warm)
    done = {r.trial_id for r in records}
    sample = sampler_for(exp, data.task)
    started = time.monotonic()
    while len(done) < exp.search.num_samples:
        if exp.search.time_budget_s and time.monotonic() - started > exp.search.time_budget_s:
            break
        with one_sync(study):
            trial = study.ask()
            sample(trial)
        trial_id = f"optuna_{trial.number:05d}"
        record = _run_trial(exp, data, trial, trial_id, path)
        tell(study, trial, record, exp.metric)
        save_record(path, record)
        records.append(record)
        done.add(trial_id)
        tell_observers(observers, [record])
    return records


def _run_trial(
    exp: ExperimentConfig, data: PreparedData, trial: optuna.Trial, trial_id: str, path: Path
) -> TrialRecord:
    params = dict(trial.params)
    config = exp.trial_config(params)
    history: list[dict[str, float]] = []

    prune = exp.search.scheduler.name != "none"

    def report(epoch: int, metrics: dict[str, float]) -> None:
        history.append(metrics)
        value = metrics.get(exp.metric, math.nan)
        if prune and not math.isnan(value):
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

    started = time.perf_counter()
    error = ""
    for _attempt in range(exp.search.max_failures + 1):
        history.clear()
        try:
            result = train_trial(config, data, report=report)
        except optuna.TrialPruned:
            return TrialRecord(
                trial_id,
                params,
                config,
                "stopped",
                dict(history[-1]) if history else {},
                list(history),
                node_id="local",
                seconds=time.perf_counter() - started,
            )
        except Exception as err:  # noqa: BLE001 - a failed trial is recorded, the search goes on
            error = f"{type(err).__name__}: {err}"
            continue
        bundle_dir = path / "bundles" / trial_id
        result.bundle.save(bundle_dir)
        return TrialRecord(
            trial_id,
            params,
            config,
            "finished",
            dict(result.metrics),
            result.history,
            node_id="local",
            bundle_dir=str(bundle_dir),
            seconds=time.perf_counter() - started,
        )
    return TrialRecord(
        trial_id, params, config, "failed", node_id="local", error=error, seconds=time.perf_counter() - started
    )
