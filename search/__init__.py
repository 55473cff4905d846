"""tunefleet search driver: YAML search spaces, Ray Tune + OptunaSearch, an Optuna-only backend.

Depends on the ``tunefleet`` core; knows nothing of MLflow (the pipeline observes
trials through :class:`search.result.SearchObserver`).
"""

from search.driver import run_search
from search.result import SearchObserver, SearchResult, TrialRecord
from search.spec import ExperimentConfig, load_experiment

__all__ = ["ExperimentConfig", "SearchObserver", "SearchResult", "TrialRecord", "load_experiment", "run_search"]
