"""The contract between the cohort loop and the backends that train cohorts.

A :class:`CohortJob` is one cohort: its members' trial ids and configs. ``run_cohort``
trains it with the pure ``train_cohort`` and returns one :class:`MemberOutcome` per
member; it is the same function wherever a cohort trains. A resource backend hands out a
:class:`CohortRunner` (``Lease.cohort_runner``): one in this process
(:mod:`tunefleet.search.in_process.backend`), or Ray tasks on a local Ray or a cluster
(:mod:`tunefleet.search.ray.cohort_tasks`). The bundles come back to the driver with the
outcomes (a few KB each), so workers need no shared storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tunefleet.bundle import ModelBundle
from tunefleet.errors import first_line
from tunefleet.search.result import Status
from tunefleet.splits import PreparedData
from tunefleet.train_config import TrainConfig

Judge = Callable[[str, int, float], bool]  # (trial id, epoch, value) -> stop this member now


@dataclass(frozen=True)
class CohortJob:
    cohort_id: str
    trial_ids: tuple[str, ...]
    configs: tuple[TrainConfig, ...]
    metric: str


@dataclass
class MemberOutcome:
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    bundle: ModelBundle | None = None
    node_id: str = "local"
    error: str | None = None
    seconds: float = 0.0


def run_cohort(job: CohortJob, data: PreparedData, judge: Judge | None, node_id: str = "local") -> list[MemberOutcome]:
    """Train one cohort; members the judge stops end as ``stopped`` with their curve so far.

    ``train_cohort`` (and torch) is imported here, where a cohort trains (a Ray worker, or
    the one process of ``backend: optuna``): a driver that hands cohorts to workers never
    imports torch.
    """
    from tunefleet.cohort import train_cohort

    stopped: set[int] = set()

    def report(member: int, epoch: int, row: dict[str, float]) -> bool:
        if judge is None or epoch >= job.configs[member].epochs:  # a last epoch is an end, not a rung
            return False
        if judge(job.trial_ids[member], epoch, float(row.get(job.metric, float("nan")))):
            stopped.add(member)
            return True
        return False

    started = time.perf_counter()
    try:
        results = train_cohort(job.configs, data, report)
    except Exception as err:  # noqa: BLE001 - the members are recorded as failed, the search goes on
        error = first_line(err)
        return [MemberOutcome("failed", node_id=node_id, error=error) for _ in job.configs]
    seconds = (time.perf_counter() - started) / len(job.configs)  # members share the time
    outcomes = []
    for k, result in enumerate(results):
        if k in stopped:
            outcomes.append(
                MemberOutcome("stopped", dict(result.history[-1]), result.history, None, node_id, None, seconds)
            )
        else:
            outcomes.append(
                MemberOutcome("finished", result.metrics, result.history, result.bundle, node_id, None, seconds)
            )
    return outcomes


class CohortRunner(Protocol):
    def start(self, job: CohortJob) -> None: ...

    def running(self) -> int: ...

    def has_room(self) -> bool:
        """Whether the driver should ask and start more cohorts now."""
        ...

    def wait(self) -> list[tuple[CohortJob, list[MemberOutcome]]]:
        """Block until at least one started job ends; return the ended ones."""
        ...

    def close(self) -> None:
        """Give up the cohorts still running: the search ends early (Ctrl-C, an error)."""
        ...
