"""Cohorts as Ray tasks, on a local Ray or a cluster: the Ray backend's cohort runner.

Why Ray *tasks* and not Tune trials that each hold a cohort: the sampler has to see
every member (K asks, K tells) and ASHA has to judge every member, which Tune's
one-config-per-trial searcher and scheduler cannot do; and a Ray task costs ~1 ms to
schedule where a Tune trial costs ~0.2 s of driver bookkeeping (``benchmarks/bench_search.py``).
A task lost with its node is re-run elsewhere by Ray (``max_retries``): it is
deterministic (seeded members), so no member is lost and none changes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tunefleet.errors import first_line
from tunefleet.search.cohort_jobs import CohortJob, Judge, MemberOutcome, run_cohort
from tunefleet.search.rungs import RungTable
from tunefleet.splits import PreparedData


class ActorJudge:
    """A picklable judge that asks the driver's rung-table actor, once per member per rung.

    Only at rung epochs: any other epoch is no decision, and a call is a blocking round
    trip (the 256-trial benchmark search made ~5,000 of them, one per member-epoch, and
    its table actor spent 8 CPU-s answering).
    """

    def __init__(self, actor: Any, rungs: frozenset[int]) -> None:
        self.actor, self.rungs = actor, rungs

    def __call__(self, trial_id: str, epoch: int, value: float) -> bool:
        import ray

        if epoch not in self.rungs:
            return False
        try:
            return bool(ray.get(self.actor.judge.remote(trial_id, epoch, value)))
        except Exception:  # noqa: BLE001 - no answer from the table: the member goes on (ASHA only ever stops)
            return False


def _table_actor(rungs: RungTable) -> Any:
    """The rung table as an actor on the driver's node, so losing a worker node cannot take it along."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    actor_cls = ray.remote(RungTable).options(num_cpus=0, scheduling_strategy=here)
    return actor_cls.remote(sorted(rungs.rungs), rungs.reduction_factor, rungs.mode, rungs.values)


def _ray_cohort(job: CohortJob, data: PreparedData, judge: Judge | None) -> list[MemberOutcome]:
    import ray

    return run_cohort(job, data, judge, node_id=ray.get_runtime_context().get_node_id())


def _ray_cohort_with_table(
    job: CohortJob, data: PreparedData, table: RungTable
) -> tuple[list[MemberOutcome], dict[int, dict[str, float]]]:
    """One cohort judged by a copy of the rung table it carries; the copy's values come back with it."""
    return _ray_cohort(job, data, table.judge), table.values


def _import_core() -> None:
    import tunefleet.cohort  # noqa: F401 - torch and the core: the import is the point


def warm_workers(slots: int, cpus: float, gpus: float) -> list[Any]:
    """On a one-node Ray, have ``slots`` workers import torch and the core while the driver still prepares.

    A fresh Ray worker spends seconds importing torch before its first cohort; started
    when the session opens, that overlaps the tracking store's connect and the study's
    setup, and the cohorts then run on the same workers (Ray reuses idle workers). On the
    search's own head the worker processes are up already (:func:`tunefleet.search.ray.head._start_head`).
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

    No more tasks than slots are handed to Ray; the cohorts asked ahead wait here. A task
    that asks the rung table blocks in ``ray.get``, and Ray lends a blocked task's CPU to
    any task in its queue, starting a fresh worker (a torch import) to run it: with
    cohorts queued in Ray, the 256-trial benchmark search ran on 15 worker processes
    instead of 2 (142 CPU-s for 78 s of wall).

    With one slot no two cohorts train at once, so the rung table needs no actor (a
    worker process of its own, ~1.3 CPU-s in a smoke search): each cohort carries a copy
    of the driver's table, judges its members with it, and brings the values it recorded
    back, and the driver adds them before the next cohort starts. That is every value
    the actor would have held at each decision, and a retried task re-judges from the
    same copy.
    """

    def __init__(self, data: PreparedData, rungs: RungTable | None, slots: int, cpus: float, gpus: float) -> None:
        import ray

        self.slots = slots
        self.data_ref = ray.put(data)
        self.table = rungs if slots == 1 else None  # carried by each cohort (see above)
        self.judge = ActorJudge(_table_actor(rungs), rungs.rungs) if rungs is not None and slots > 1 else None
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=3)
        self.task: Any = remote(_ray_cohort_with_table if self.table is not None else _ray_cohort)
        self.refs: dict[Any, CohortJob] = {}
        self.waiting: deque[CohortJob] = deque()

    def start(self, job: CohortJob) -> None:
        self.waiting.append(job)
        self._submit()

    def _submit(self) -> None:
        while self.waiting and len(self.refs) < self.slots:
            job = self.waiting.popleft()
            judge = self.table if self.table is not None else self.judge
            self.refs[self.task.remote(job, self.data_ref, judge)] = job

    def running(self) -> int:
        return len(self.refs) + len(self.waiting)

    def has_room(self) -> bool:
        """Ask ahead while no cohort waits: a freed slot then starts the next cohort at once,
        not after the driver's next asks (TPE takes ~40 ms a config late in a search, so a
        slot idled ~1.3 s per ask of 32). TPE's constant liar counts waiting configs as running."""
        return not self.waiting

    def wait(self) -> list[tuple[CohortJob, list[MemberOutcome]]]:
        import ray

        ready, _ = ray.wait(list(self.refs), num_returns=1)
        ended = []
        for ref in ready:
            job = self.refs.pop(ref)
            try:
                outcomes = ray.get(ref)
                if self.table is not None:
                    outcomes, values = outcomes
                    self.table.merge(values)
                ended.append((job, outcomes))
            except Exception as err:  # noqa: BLE001 - lost beyond its retries: its members are failed trials
                ended.append((job, [MemberOutcome("failed", error=first_line(err)) for _ in job.configs]))
        self._submit()  # the next cohort starts before the driver records these
        return ended

    def close(self) -> None:
        """Cancel the running cohorts before Ray shuts down.

        Left running, each died with the session's workers, and Ray counted that as a
        failure to retry: it tried to tell the departing driver and printed "Failed to
        push error to driver" to the interrupted command's output (seen in CI after a
        Ctrl-C). A cancelled task is never retried. Their members were never logged, so
        ``--resume`` asks for them again.
        """
        import ray

        self.waiting.clear()
        for ref in self.refs:
            ray.cancel(ref)
        self.refs.clear()
