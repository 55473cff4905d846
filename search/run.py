"""``run_search``: check a search once, pick its backend and loop, run or resume it, return the result."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunefleet.baseline import logistic_regression
from tunefleet.search.backends import ResourceBackend, SearchRequest, TrialLoop, get_backend, get_loop
from tunefleet.search.champion import choose
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import ProgressPrinter, SearchObserver, SearchResult, pick_best
from tunefleet.search.resume import resolve_search, save_spec
from tunefleet.splits import PreparedData


@dataclass(frozen=True)
class CheckedSearch:
    """One search's spec, data, name, backend and loop, checked once by :func:`check_search` and passed on as is."""

    exp: ExperimentConfig
    data: PreparedData
    name: str  # a new name, or that of the search to resume
    resume: bool
    address: str | None
    backend: ResourceBackend
    loop: TrialLoop

    @property
    def path(self) -> Path:
        return Path(self.exp.search.storage_path).expanduser() / self.name


def check_search(
    exp: ExperimentConfig, data: PreparedData, *, name: str | None = None, resume: bool = False,
    address: str | None = None, backend: ResourceBackend | None = None,
) -> CheckedSearch:  # fmt: skip
    """Refuse, before anything slow starts, a search that cannot run: a metric the data's task
    does not report, an unknown backend, a cluster that cannot be reached, a name to resume that
    left no state (or other settings). ``backend``: one the caller prepared already (the CLI
    starts Ray's head before the data loads). What it returns is what :func:`run_checked` runs."""
    exp.check_task(data.task)
    exp = exp.fitted(data)  # batch sizes and epochs that follow the training rows (search.fit)
    backend = backend or get_backend(exp.search.backend)
    backend.check(exp, address=address)
    loop = get_loop(exp, backend)
    loop.check(exp)
    name = resolve_search(exp, name, resume, data.split_hash, loop)
    return CheckedSearch(exp, data, name, resume, address, backend, loop)


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
    warm: tuple[Any, ...] = (),
    verbose: bool = False,
) -> SearchResult:
    """Check and run one search (:func:`check_search`, then :func:`run_checked`); the library's entry.

    No MLflow: the result holds every trial and the best one's bundle. It returns once
    the resources it started (a local Ray) are released.
    """
    checked = check_search(exp, data if data is not None else exp.load(), name=name, resume=resume, address=address)
    inputs = RunInputs(tuple(observers), progress, tuple(points or ()), warm, verbose)
    try:
        return run_checked(checked, inputs)
    finally:
        checked.backend.close()


@dataclass(frozen=True)
class RunInputs:
    """What a checked search runs with besides its spec and data (:func:`run_search`'s keywords, typed once).

    ``points`` are sampled-param dicts (lr, n_layers, width_0, ...) evaluated first,
    before TPE takes over: known-good configs, or fixed configs for benchmarks. ``warm``
    are trials of earlier searches (:mod:`tunefleet.search.warm`) that TPE starts from.
    """

    observers: tuple[SearchObserver, ...] = ()
    progress: bool = True
    points: tuple[dict[str, Any], ...] = ()
    warm: tuple[Any, ...] = ()
    verbose: bool = False


def run_checked(search: CheckedSearch, inputs: RunInputs = RunInputs()) -> SearchResult:
    """Run (or resume) a checked search with its loop on its backend; every trial, and the champion chosen
    among the finished trials, their ensemble and the baseline (:mod:`tunefleet.search.champion`).
    The caller closes ``search.backend`` (:func:`run_search` does).
    """
    exp, data, name, path = search.exp, search.data, search.name, search.path
    verbose = inputs.verbose
    printer = ProgressPrinter(exp.metric, exp.mode, exp.search.num_samples, enabled=inputs.progress)
    observers = (printer, *inputs.observers)
    request = SearchRequest(exp, data, name, path, search.resume, observers, inputs.points, inputs.warm)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="baseline") as pool:
        baseline_job = pool.submit(logistic_regression, data, exp.threshold, exp.search.seed)  # beside the trials
        with search.backend.lease(exp, data, address=search.address, verbose=verbose) as lease:
            session = search.loop.open(exp, data, lease, verbose=verbose)
            if not search.resume:
                save_spec(path, exp, data.split_hash)
            for obs in request.observers:
                obs.on_search_start(exp, data, name, path, search.resume)
            records = session.run(request)
        baseline = baseline_job.result()
    best = pick_best(records, exp.metric, exp.mode)
    verdict = choose(exp, data, records, baseline)
    bundle = verdict.champion.bundle if verdict else None
    return SearchResult(
        exp,
        data,
        exp.search.backend,
        name,
        path,
        records,
        time.perf_counter() - started,
        best,
        bundle,
        verdict,
        baseline,
    )
