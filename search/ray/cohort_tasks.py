"""Cohorts as Ray tasks, on a local Ray or a cluster: the Ray backend's cohort runner.

Why Ray *tasks* and not Tune trials that each hold a cohort: the sampler has to see every
member (its asks and tells) and the rounds judge every trial at its rungs, which Tune's
one-config-per-trial searcher and scheduler cannot do; and a Ray task costs ~1 ms to
schedule where a Tune trial costs ~0.2 s of driver bookkeeping (``benchmarks/bench_search.py``).
A task lost with its node is re-run elsewhere by Ray (``max_retries``): it is deterministic
(seeded members, fixed shapes), so no member is lost and none changes.

Trials are judged between rounds, in the driver (:mod:`tunefleet.search.cohorts.loop`): a
task never waits on another, and needs no table of rung values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunefleet.errors import first_line
from tunefleet.search.cohort_jobs import CohortJob, TrialOutcome, run_cohort
from tunefleet.splits import PreparedData


def _ray_cohort(job: CohortJob, data: PreparedData) -> list[TrialOutcome]:
    import ray

    return run_cohort(job, data, node_id=ray.get_runtime_context().get_node_id())


def _import_core() -> None:
    import tunefleet.cohort  # noqa: F401 - torch and the core: the import is the point


def warm_workers(slots: int, cpus: float, gpus: float) -> list[Any]:
    """On a one-node Ray, have ``slots`` workers import torch and the core while the driver still prepares.

    A fresh Ray worker spends seconds importing torch before its first cohort; started
    when the session opens, that overlaps the tracking store's connect and the study's
    setup, and the cohorts then run on the same workers (Ray reuses idle workers). On the
    search's own head the worker processes are up already (:mod:`tunefleet.search.ray.head`).
    Measured on the smoke search: the first cohort came back 5.7 s after the search
    started instead of 6.9 s.

    The tasks must hold the resources the cohorts need, so that the cohorts wait for
    these workers instead of starting new, cold ones: ``cpus`` each, the node's CPUs
    shared among the slots (with one slot of two CPUs, a task of one CPU let the first
    cohort start a second worker beside the warming one: two torch imports). On a
    cluster they are not started: a slow import on one node made every cohort queue on
    the other (seen in CI, 2 nodes), and tasks that hold no CPU let the cohorts start
    fresh workers beside the warming ones instead (the first cohort took 9 s).
    """
    import ray

    if len(ray.nodes()) != 1:
        return []
    task = ray.remote(num_cpus=cpus, num_gpus=gpus)(_import_core)
    return [task.remote() for _ in range(slots)]


class RayRunner:
    """Each cohort a Ray task holding one trial's resources (a CPU, or a GPU fraction).

    No more tasks than slots are handed to Ray at once; the round's other cohorts wait here
    and go as slots free, the longest first. Ray is never handed a queue of its own: it
    would start a fresh worker (a torch import) for a queued task whenever it lent a
    blocked task's CPU (with cohorts queued in Ray, the 256-trial benchmark search once ran
    on 15 worker processes instead of 2).
    """

    def __init__(self, data: PreparedData, slots: int, cpus: float, gpus: float) -> None:
        import ray

        self.slots = slots
        self.data_ref = ray.put(data)
        self.task: Any = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=3)(_ray_cohort)
        self.jobs: list[CohortJob] = []
        self.refs: dict[Any, int] = {}  # in flight: ref -> index of its job

    def start(self, jobs: Sequence[CohortJob]) -> None:
        self.jobs = list(jobs)
        self.refs = {}
        self._submit(0)

    def _submit(self, next_job: int) -> int:
        while next_job < len(self.jobs) and len(self.refs) < self.slots:
            self.refs[self.task.remote(self.jobs[next_job], self.data_ref)] = next_job
            next_job += 1
        return next_job

    def results(self) -> list[list[TrialOutcome]]:
        import ray

        out: list[list[TrialOutcome] | None] = [None] * len(self.jobs)
        next_job = len(self.refs)
        while self.refs:
            ready, _ = ray.wait(list(self.refs), num_returns=1)
            for ref in ready:
                index = self.refs.pop(ref)
                try:
                    out[index] = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - lost beyond its retries: its trials are failed
                    out[index] = [TrialOutcome("failed", error=first_line(err)) for _ in self.jobs[index].trials]
            next_job = self._submit(next_job)  # the next cohort starts before the driver reads these
        self.jobs = []
        return [o if o is not None else [] for o in out]

    def close(self) -> None:
        """Cancel the running cohorts before Ray shuts down.

        Left running, each died with the session's workers, and Ray counted that as a
        failure to retry: it tried to tell the departing driver and printed "Failed to
        push error to driver" to the interrupted command's output (seen in CI after a
        Ctrl-C). A cancelled task is never retried. Their trials were never logged, so
        ``--resume`` asks for them again.
        """
        import ray

        for ref in self.refs:
            ray.cancel(ref)
        self.refs, self.jobs = {}, []
