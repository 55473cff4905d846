"""``run_search``: load the data once, pick a backend, run or resume, return the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from search.result import ProgressPrinter, SearchObserver, SearchResult, TrialRecord, pick_best
from search.spec import ExperimentConfig
from tunefleet.bundle import ModelBundle
from tunefleet.errors import TunefleetError
from tunefleet.splits import PreparedData


def new_name(exp: ExperimentConfig) -> str:
    return f"{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def latest_name(exp: ExperimentConfig) -> str:
    """The most recent experiment of this dataset under the storage path (for --resume)."""
    storage = Path(exp.search.storage_path).expanduser()
    if "://" in exp.search.storage_path:
        raise TunefleetError("--resume with a URI storage path needs --name NAME of the experiment to resume")
    candidates = sorted(
        (p for p in storage.glob(f"{exp.name}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    if not candidates:
        raise TunefleetError(
            f"nothing to resume: no experiment named {exp.name}-* under {storage}; drop --resume to start one"
        )
    return candidates[0].name


def _check_resources(exp: ExperimentConfig, resources: dict[str, float]) -> None:
    need = exp.search.resources
    if need.gpus_per_trial > 0 and resources.get("GPU", 0) <= 0:
        raise TunefleetError(
            f"--gpus-per-trial {need.gpus_per_trial:g} asked for, but the Ray cluster has no GPUs; "
            "drop the flag or connect to a cluster with GPUs (--address)"
        )
    if need.cpus_per_trial > resources.get("CPU", 0):
        raise TunefleetError(
            f"--cpus-per-trial {need.cpus_per_trial:g} is more than the cluster's {resources.get('CPU', 0):g} CPUs; lower it"
        )


def run_search(
    exp: ExperimentConfig,
    *,
    data: PreparedData | None = None,
    name: str | None = None,
    resume: bool = False,
    address: str | None = None,
    observers: list[SearchObserver] | tuple[SearchObserver, ...] = (),
    progress: bool = True,
    points: list[dict[str, Any]] | None = None,
    verbose: bool = False,
) -> SearchResult:
    """Run one search with the configured backend and return every trial plus the best.

    ``points`` are sampled-param dicts (lr, n_layers, width_0, ...) evaluated first,
    before TPE takes over: known-good configs, or fixed configs for benchmarks.
    """
    data = data if data is not None else exp.load()
    exp.check_task(data.task)
    backend = exp.search.backend
    if resume and name is None:
        name = latest_name(exp)
    name = name or new_name(exp)
    path = Path(exp.search.storage_path).expanduser() / name
    printer = ProgressPrinter(exp.metric, exp.mode, exp.search.num_samples, enabled=progress)
    all_observers: list[SearchObserver] = [printer, *observers]
    started = time.perf_counter()
    records: list[TrialRecord]
    if backend == "optuna":
        from search.optuna_backend import run_optuna_search

        for obs in all_observers:
            obs.on_search_start(exp, data, name, path, resume)
        records = run_optuna_search(
            exp, data, path, all_observers, threads=max(1, int(exp.search.resources.cpus_per_trial)), points=points
        )
    else:
        from search.cluster import ray_session
        from search.ray_backend import experiment_exists, run_ray_search

        with ray_session(address, verbose=verbose) as resources:
            _check_resources(exp, resources)
            if resume and not experiment_exists(exp.search.storage_path, name):
                raise TunefleetError(f"cannot resume {name}: no Ray Tune experiment state under {path}")
            for obs in all_observers:
                obs.on_search_start(exp, data, name, path, resume)
            need = exp.search.resources
            slots = int(resources.get("CPU", 1) // need.cpus_per_trial)
            if need.gpus_per_trial > 0:
                slots = min(slots, int(resources.get("GPU", 0) / need.gpus_per_trial))
            concurrency = min(exp.search.max_concurrent_trials or slots, slots)
            records = run_ray_search(exp, data, name, all_observers, resume, points, max(1, concurrency))
    best = pick_best(records, exp.metric, exp.mode)
    bundle = ModelBundle.load(best.bundle_dir) if best is not None and best.bundle_dir else None
    return SearchResult(exp, data, backend, name, path, records, time.perf_counter() - started, best, bundle)
