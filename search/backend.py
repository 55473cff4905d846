"""The search-backend protocol and its registry.

A backend turns a :class:`SearchRequest` into one :class:`TrialRecord` per trial. It
opens a :class:`BackendSession` first, in which it acquires what trials run on (a Ray
cluster, or nothing for the one-process Optuna backend) and refuses, in one line,
resources it cannot have; the driver starts the observers only once that succeeded.
A new backend is a new class registered here by name, not another branch in the driver.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from search.result import SearchObserver, TrialRecord
from search.spec import ExperimentConfig
from tunefleet.errors import ConfigError
from tunefleet.splits import PreparedData


@dataclass(frozen=True)
class SearchRequest:
    """Everything a backend needs to run (or resume) one search."""

    exp: ExperimentConfig
    data: PreparedData
    name: str
    path: Path
    resume: bool
    observers: tuple[SearchObserver, ...]
    points: tuple[dict[str, Any], ...] = ()  # sampled-param dicts evaluated before the sampler takes over
    warm: tuple[Any, ...] = ()  # completed optuna FrozenTrials of earlier searches (search.warm), seeding TPE


class BackendSession(Protocol):
    def run(self, request: SearchRequest) -> list[TrialRecord]:
        """Run or resume the search; call every observer's ``on_trial_end`` as trials end."""
        ...


class SearchBackend(Protocol):
    def check(self, exp: ExperimentConfig, *, address: str | None) -> None:
        """Refuse, in milliseconds, what cannot work (an unreachable cluster) before the
        data loads and the tracking store connects; ``open`` checks the rest."""
        ...

    def can_resume(self, exp: ExperimentConfig, name: str) -> bool:
        """Whether a search of this name left state to resume from (a file check: nothing started)."""
        ...

    def open(
        self, exp: ExperimentConfig, data: PreparedData, *, address: str | None, verbose: bool
    ) -> AbstractContextManager[BackendSession]:
        """Acquire and check the resources ``exp`` asks for (sized to ``data`` where that
        matters: a tiny search starts fewer workers); release them on exit."""
        ...


# What search.backend names, where trials run: name -> "module:Class", imported on first use,
# so the Optuna backend never imports Ray.
BACKENDS: dict[str, str] = {
    "ray": "search.ray_driver:RayBackend",
    "optuna": "search.optuna_backend:OptunaBackend",
}
# What a spec picks itself (ExperimentConfig.driver), never named by search.backend: cohorts,
# chosen by search.cohort_size, run on the resources of search.backend's backend.
DRIVERS: dict[str, str] = {"cohort": "search.cohort_backend:CohortBackend"}


def register_backend(name: str, target: str) -> None:
    """Make ``search.backend: NAME`` run the class at ``target`` ("module:Class")."""
    BACKENDS[name] = target


def check_backend_name(name: str) -> None:
    """``search.backend`` must name a backend trials run on: one of :data:`BACKENDS`."""
    if name not in BACKENDS:
        hint = (
            "; cohorts are chosen by --cohort-size K (search.cohort_size), on ray or optuna" if name in DRIVERS else ""
        )
        raise ConfigError(f"search.backend: unknown backend {name!r}; use one of: {', '.join(sorted(BACKENDS))}{hint}")


def get_backend(name: str) -> SearchBackend:
    """The class that runs a search's driver (``exp.driver``): a backend, or the cohort driver."""
    if name not in DRIVERS:
        check_backend_name(name)
    module, _, cls = {**BACKENDS, **DRIVERS}[name].partition(":")
    factory: Callable[[], SearchBackend] = getattr(importlib.import_module(module), cls)
    return factory()
