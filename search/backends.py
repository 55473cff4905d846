"""Where trials run, and how: the two protocols a search composes, and their registries.

A **resource backend** (``search.backend``) is where trials run: :class:`RayBackend`
(a Ray of the search's own, or a cluster) or the in-process one (``optuna``: this process,
no Ray). It prepares what takes long to start, lends a :class:`Lease` while the search
runs (how many trials at once, a GPU or not, and the runner that trains cohorts there),
and closes what it started.

A **trial loop** is how trials run on those resources: cohorts (many trials as one
batched model, :mod:`tunefleet.search.cohorts`) when ``search.cohort_size`` asks for
them, otherwise the backend's own one-trial-at-a-time loop (Ray Tune trials on Ray,
Optuna's study in this process). A loop asks the lease for what it needs and never
branches on the backend's name.

A new backend is a class with the :class:`ResourceBackend` methods and a line in
:data:`BACKENDS`; a new loop is a class with the :class:`TrialLoop` methods.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tunefleet.errors import ConfigError
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import SearchObserver, TrialRecord
from tunefleet.splits import PreparedData

if TYPE_CHECKING:
    from tunefleet.search.cohort_jobs import CohortRunner


@dataclass(frozen=True)
class SearchRequest:
    """Everything a loop needs to run (or resume) one search."""

    exp: ExperimentConfig
    data: PreparedData
    name: str
    path: Path
    resume: bool
    observers: tuple[SearchObserver, ...]
    points: tuple[dict[str, Any], ...] = ()  # sampled-param dicts evaluated before the sampler takes over
    warm: tuple[Any, ...] = ()  # completed optuna FrozenTrials of earlier searches (search.warm), seeding TPE


class Lease(Protocol):
    """What a backend lends a search while it runs."""

    @property
    def slots(self) -> int:
        """How many trials (or cohorts) can train at once."""
        ...

    @property
    def gpu(self) -> bool:
        """Whether trials see a GPU."""
        ...

    @property
    def own(self) -> bool:
        """Resources started for this search on this machine: a loop may use fewer slots than they hold."""
        ...

    def warm(self, slots: int) -> None:
        """Ready ``slots`` workers now (import torch in them), while the driver still prepares."""
        ...

    def cohort_runner(self, data: PreparedData, slots: int) -> CohortRunner:
        """Where cohorts train on these resources, ``slots`` at a time."""
        ...


class ResourceBackend(Protocol):
    trial_loop: str  # "module:Class" of the loop that runs one trial at a time here

    def check(self, exp: ExperimentConfig, *, address: str | None) -> None:
        """Refuse, in milliseconds, what cannot work (an unreachable cluster) before the
        data loads and the tracking store connects; ``lease`` checks the rest."""
        ...

    def prepare(self, exp: ExperimentConfig, *, address: str | None, verbose: bool) -> None:
        """Start ahead what takes long (Ray's local head), beside the driver's imports."""
        ...

    def lease(
        self, exp: ExperimentConfig, data: PreparedData, *, address: str | None, verbose: bool
    ) -> AbstractContextManager[Lease]:
        """Acquire and check the resources ``exp`` asks for; release them on exit."""
        ...

    def close(self) -> None:
        """Stop what :meth:`prepare` started and no lease took, and wait for what is shutting down."""
        ...


class LoopSession(Protocol):
    def run(self, request: SearchRequest) -> list[TrialRecord]:
        """Run or resume the search; call every observer's ``on_trial_end`` as trials end."""
        ...


class TrialLoop(Protocol):
    def check(self, exp: ExperimentConfig) -> None:
        """Refuse what this loop cannot run (one line), before anything starts."""
        ...

    def can_resume(self, exp: ExperimentConfig, name: str) -> bool:
        """Whether a search of this name left state to resume from (a file check: nothing started)."""
        ...

    def open(self, exp: ExperimentConfig, data: PreparedData, lease: Lease, *, verbose: bool) -> LoopSession:
        """Set up on the lease (warm its workers) before the observers start; the session runs the trials."""
        ...


# What search.backend names, where trials run: name -> "module:Class", imported on first use,
# so the in-process backend never imports Ray.
BACKENDS: dict[str, str] = {
    "ray": "tunefleet.search.ray.backend:RayBackend",
    "optuna": "tunefleet.search.in_process.backend:InProcessBackend",
}
COHORT_LOOP = "tunefleet.search.cohorts.loop:CohortLoop"  # chosen by search.cohort_size, on any backend


def register_backend(name: str, target: str) -> None:
    """Make ``search.backend: NAME`` run on the class at ``target`` ("module:Class")."""
    BACKENDS[name] = target


def _load(target: str) -> Callable[[], Any]:
    module, _, cls = target.partition(":")
    factory: Callable[[], Any] = getattr(importlib.import_module(module), cls)
    return factory


def get_backend(name: str) -> ResourceBackend:
    """A new instance of the backend ``search.backend`` names (one per search: it holds what it starts)."""
    if name not in BACKENDS:
        hint = (
            "; cohorts are chosen by --cohort-size K (search.cohort_size), on ray or optuna" if name == "cohort" else ""
        )
        raise ConfigError(f"search.backend: unknown backend {name!r}; use one of: {', '.join(sorted(BACKENDS))}{hint}")
    backend: ResourceBackend = _load(BACKENDS[name])()
    return backend


def get_loop(exp: ExperimentConfig, backend: ResourceBackend) -> TrialLoop:
    """Cohorts when the spec batches trials (:attr:`ExperimentConfig.in_cohorts`), else the backend's own loop."""
    loop: TrialLoop = _load(COHORT_LOOP if exp.in_cohorts else backend.trial_loop)()
    return loop
