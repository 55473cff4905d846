"""The search layer: a spec, a space, trials run on some resources, every result. No MLflow.

How a search flows (:mod:`tunefleet.search.run`):

1. **The spec** (:mod:`~tunefleet.search.experiment`): ``conf/search.yaml``, the dataset's
   file and overrides, validated once into an :class:`ExperimentConfig`. Its space is
   declared once, one line per hyperparameter (:mod:`~tunefleet.search.space`).
2. **The check** (:func:`check_search`): the metric against the data's task, the backend
   and its address, the loop, the name to start or resume (:mod:`~tunefleet.search.resume`).
3. **The run** (:func:`run_checked`): the **backend** (``search.backend``) lends resources
   for the search's length, and a **trial loop** runs the trials on them
   (:mod:`~tunefleet.search.backends` defines both protocols). Observers (the pipeline's
   MLflow writer, the progress lines) hear of each trial as it ends.
4. **The result** (:mod:`~tunefleet.search.result`): every trial's record, the best one
   and its bundle; :mod:`~tunefleet.search.importance` ranks the hyperparameters.

The spine (this folder) is shared; each way of running trials is a wing:

- :mod:`tunefleet.search.ray`: the Ray backend (a local head of the search's own or a
  cluster, its start, its shutdown) and Ray Tune trials, one config per trial;
- :mod:`tunefleet.search.cohorts`: many trials as one batched model, on any backend's
  resources (the default);
- :mod:`tunefleet.search.in_process`: this process as the backend, and Optuna's study loop.

The study on disk (:mod:`~tunefleet.search.study`) serves the cohort and in-process loops;
warm start (:mod:`~tunefleet.search.warm`) seeds TPE from earlier searches.

The names below load on first use (PEP 562): a Ray worker that imports one small module
of this package (the rung table's actor imports ``tunefleet.search.rungs``) must
not pay for the driver's whole import tree (Optuna, Ray Tune, pydantic, torch: ~3 s of CPU).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefleet.search.experiment import ExperimentConfig, load_experiment
    from tunefleet.search.result import SearchObserver, SearchResult, TrialRecord
    from tunefleet.search.run import CheckedSearch, check_search, run_checked, run_search

_HOMES = {
    "run_search": "tunefleet.search.run",
    "check_search": "tunefleet.search.run",
    "run_checked": "tunefleet.search.run",
    "CheckedSearch": "tunefleet.search.run",
    "SearchObserver": "tunefleet.search.result",
    "SearchResult": "tunefleet.search.result",
    "TrialRecord": "tunefleet.search.result",
    "ExperimentConfig": "tunefleet.search.experiment",
    "load_experiment": "tunefleet.search.experiment",
}
__all__ = [
    "CheckedSearch",
    "ExperimentConfig",
    "SearchObserver",
    "SearchResult",
    "TrialRecord",
    "check_search",
    "load_experiment",
    "run_checked",
    "run_search",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'tunefleet.search' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
