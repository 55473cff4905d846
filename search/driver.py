"""``run_search``: load the data once, pick a backend, run or resume, return the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from search.backend import SearchRequest, get_backend
from search.result import ProgressPrinter, SearchObserver, SearchResult, pick_best
from search.resume import resolve_search, save_spec
from search.spec import ExperimentConfig
from tunefleet.bundle import ModelBundle
from tunefleet.splits import PreparedData


def check_backend(exp: ExperimentConfig, address: str | None = None) -> None:
    """The search's backend refuses what cannot work, before anything slow starts."""
    get_backend(exp.driver).check(exp, address=address)


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
    """Run one search with the configured backend and return every trial plus the best.

    ``points`` are sampled-param dicts (lr, n_layers, width_0, ...) evaluated first,
    before TPE takes over: known-good configs, or fixed configs for benchmarks. ``warm``
    are completed trials of earlier searches (:mod:`search.warm`) that TPE starts from.
    """
    data = data if data is not None else exp.load()
    exp.check_task(data.task)
    check_backend(exp, address)
    name = resolve_search(exp, name, resume, data.split_hash)
    path = Path(exp.search.storage_path).expanduser() / name
    printer = ProgressPrinter(exp.metric, exp.mode, exp.search.num_samples, enabled=progress)
    request = SearchRequest(exp, data, name, path, resume, (printer, *observers), tuple(points or ()), warm)
    started = time.perf_counter()
    with get_backend(exp.driver).open(exp, data, address=address, verbose=verbose) as session:
        if not resume:
            save_spec(path, exp, data.split_hash)
        for obs in request.observers:
            obs.on_search_start(exp, data, name, path, resume)
        records = session.run(request)
    best = pick_best(records, exp.metric, exp.mode)
    bundle = ModelBundle.load(best.bundle_dir) if best is not None and best.bundle_dir else None
    if best is not None and data.folds:  # the chosen config, refit on all of train + validation
        from tunefleet.cv import refit  # trains in this process (torch): only with folds

        bundle = refit(best.config, data, best.metrics)
    return SearchResult(exp, data, exp.search.backend, name, path, records, time.perf_counter() - started, best, bundle)
