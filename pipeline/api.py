"""The Python API of ``tunefleet search``: :func:`search` does what the command does, and returns
what its ``--json`` writes.

The command (:mod:`tunefleet.pipeline.commands`) and this function share
:func:`run_search_lifecycle`. So do their checks: a bad flag, file or target column is one
:class:`tunefleet.TunefleetError` line, raised before Ray, torch or MLflow is imported.
Training one config on a dataset by name needs no search: ``tunefleet.load`` and
``tunefleet.train_one`` (the README's Python section shows both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunefleet.pipeline.settings import RunOptions, load_tracking_settings

if TYPE_CHECKING:
    from tunefleet.pipeline.settings import TrackingSettings
    from tunefleet.pipeline.summary import PipelineSummary
    from tunefleet.search.experiment import ExperimentConfig

# The typed search flags, each a config key path: the command's --trials and this API's trials= alike.
FLAG_KEYS = {
    "trials": "search.num_samples",
    "backend": "search.backend",
    "cohort_size": "search.cohort_size",
    "cv": "split.cv_folds",
    "cpus_per_trial": "search.resources.cpus_per_trial",
    "gpus_per_trial": "search.resources.gpus_per_trial",
    "max_concurrent": "search.max_concurrent_trials",
    "time_budget": "search.time_budget_s",
    "scheduler": "search.scheduler.name",
    "storage_path": "search.storage_path",
}


def flag_keys(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags that were given (not None), as config key paths -> their typed values (never re-parsed)."""
    return {FLAG_KEYS[name]: value for name, value in flags.items() if value is not None}


def run_search_lifecycle(
    exp: ExperimentConfig, settings: TrackingSettings, options: RunOptions, *, address: str | None = None,
    name: str | None = None, resume: bool = False,
) -> PipelineSummary:  # fmt: skip
    """One whole search: its backend prepared (Ray's head starts beside the data's load), the data
    loaded once, the search checked, then searched, tested, logged and registered
    (:func:`tunefleet.pipeline.lifecycle.run_pipeline`); the backend is closed however it ends."""
    from tunefleet.search.backends import get_backend
    from tunefleet.search.run import check_search

    backend = get_backend(exp.search.backend)
    backend.prepare(exp, address=address, verbose=options.verbose)
    try:
        data = exp.load()  # once, on the driver; the backend shares it with every trial
        # the metric, the cluster's address and --resume, checked before the lifecycle's imports
        search = check_search(exp, data, name=name, resume=resume, address=address, backend=backend)
        from tunefleet.pipeline.lifecycle import run_pipeline

        return run_pipeline(search, settings, options)
    finally:
        backend.close()


def search(
    dataset: str | None = None, *, data: str | Path | None = None, target: str | None = None,
    trials: int | None = None, backend: str | None = None, cohort_size: int | str | None = None,
    cv: int | None = None, scheduler: str | None = None, time_budget: float | None = None,
    storage_path: str | None = None, cpus_per_trial: float | None = None, gpus_per_trial: float | None = None,
    max_concurrent: int | None = None, address: str | None = None, overrides: Sequence[str] = (),
    smoke: bool = False, name: str | None = None, resume: bool = False, warm_start: bool = False,
    tracking_uri: str | None = None, experiment: str | None = None, model_name: str | None = None,
    register: bool = True, gate: str | None = None, progress: bool = True, verbose: bool = False,
    conf: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Search a dataset, log it to MLflow, register and gate the best model: ``tunefleet search``.

    Each keyword is the command's flag of the same name (``trials=24`` is ``--trials 24``,
    ``overrides=["space.lr.high=0.5"]`` is ``--set space.lr.high=0.5``, ``data=`` and
    ``target=`` are ``--data`` and ``--target``). Returns the dict that ``--json`` writes:
    the trial counts, the best config, validation, test and baseline metrics with their
    intervals, importance, and the registered version with its alias and ``model_uri``.
    Progress lines print as the command's do (``progress=False``: none); the summary table
    is the command's alone. Raises :class:`tunefleet.TunefleetError` (one line) on bad input.
    """
    from tunefleet.pipeline.quiet import configure_output
    from tunefleet.search.experiment import load_experiment
    from tunefleet.tables import check_data_path

    configure_output(verbose)
    if data is not None:
        check_data_path(Path(data))
    flags = {
        "trials": trials, "backend": backend, "cohort_size": cohort_size, "cv": cv, "scheduler": scheduler,
        "time_budget": time_budget, "storage_path": storage_path, "cpus_per_trial": cpus_per_trial,
        "gpus_per_trial": gpus_per_trial, "max_concurrent": max_concurrent,
    }  # fmt: skip
    exp = load_experiment(
        dataset,
        data_file=str(data) if data is not None else None,
        target=target,
        overrides=list(overrides),
        values=flag_keys(flags),
        smoke=smoke,
        conf_dir=conf,
    )
    settings = load_tracking_settings(tracking_uri, conf, gate)
    given = {k: v for k, v in {"dataset": dataset, "data": data, "target": target, **flags}.items() if v is not None}
    options = RunOptions(
        experiment_name=experiment,
        model_name=model_name,
        register=register,
        progress=progress,
        command="tunefleet.pipeline.search(" + ", ".join(f"{k}={v!r}" for k, v in given.items()) + ")",
        verbose=verbose,
        warm_start=warm_start,
        smoke=smoke,
    )
    summary = run_search_lifecycle(exp, settings, options, address=address, name=name, resume=resume)
    result: dict[str, Any] = summary.as_json()
    return result
