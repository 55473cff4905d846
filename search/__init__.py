"""tunefleet search driver: YAML search spaces, Ray Tune + OptunaSearch, an Optuna-only backend.

Depends on the ``tunefleet`` core; knows nothing of MLflow (the pipeline observes
trials through :class:`search.result.SearchObserver`).

The names below load on first use (PEP 562): a Ray worker that imports one small
module of this package (the rung table's actor imports ``search.rungs``) must not pay
for the driver's whole import tree (Optuna, Ray Tune, pydantic, torch: ~3 s of CPU).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.driver import CheckedSearch, check_search, run_checked, run_search
    from search.result import SearchObserver, SearchResult, TrialRecord
    from search.spec import ExperimentConfig, load_experiment

_HOMES = {
    "run_search": "search.driver",
    "check_search": "search.driver",
    "run_checked": "search.driver",
    "CheckedSearch": "search.driver",
    "SearchObserver": "search.result",
    "SearchResult": "search.result",
    "TrialRecord": "search.result",
    "ExperimentConfig": "search.spec",
    "load_experiment": "search.spec",
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
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
