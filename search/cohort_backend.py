"""Cohort search: TPE asks K configs at a time and each cohort trains them as one batched model.

Chosen by ``search.cohort_size`` (``--cohort-size K`` or ``auto``); cohorts run on the
resources of ``search.backend``: Ray tasks on a local Ray or a cluster (``ray``), or
this process (``optuna``). Every member stays a full trial (its own TrialRecord, child
run and bundle), and the sampler, early stopping and resume keep their meaning:

- **Sampler**: Optuna's seeded TPE with ``constant_liar``. The K configs of a cohort
  are asked before any of them is told, so without the liar TPE would propose K near
  copies of its current favourite; with it, asked-but-running trials count as bad and
  the K spread out. Every member is told, stopped members as pruned with their last value.
- **Early stopping**: ASHA at the member level (:mod:`search.rungs`), one rung table
  for all cohorts of the search.
- **Resume**: the study and ended records are on disk (:mod:`search.study`); a killed
  driver's cohorts are re-asked and re-run.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna

from search.backend import SearchRequest, get_backend
from search.cohort_runner import CohortJob, CohortRunner, LocalRunner, MemberOutcome, RayRunner, warm_workers
from search.result import TrialRecord, tell_observers
from search.rungs import RungTable, rung_table
from search.space import SpaceSampler, sampler_for
from search.space_spec import ParamSpec
from search.spec import ExperimentConfig
from search.study import ended_before, has_study, one_sync, open_study, save_record, seed_study, tell
from tunefleet.cohort_plan import cohort_cost, plan_cohorts
from tunefleet.config import is_uri
from tunefleet.datasets import n_outputs_for
from tunefleet.errors import TunefleetError
from tunefleet.splits import PreparedData
from tunefleet.train_config import TrainConfig

CPU_WORK_LIMIT = 2e7  # multiply-adds per member-epoch above which a CPU gains little from batching
CPU_MAX_K, GPU_MAX_K = 32, 128  # the 256-trial benchmark search: K=16 19-20 s, K=64 16-18 s, K=32 9-19 s


def auto_cohort_size(exp: ExperimentConfig, data: PreparedData, slots: int, gpu: bool) -> int:
    """K for ``cohort_size: auto``: enough members per ask that every slot gets a cohort, up to what pays off.

    One ask of K splits into a cohort per layer count the space allows
    (:func:`tunefleet.cohort_plan.cohort_key`), so K is the trials per slot times that number. A member's cost per epoch is about
    (parameters x training rows) of the widest net the space allows: on a CPU, batching
    removes per-step overhead, which matters only while that arithmetic is small
    (breast_cancer: 9e6); MNIST-sized inputs (6e8) are compute-bound already, so K = 1.
    A GPU is busy only with many members.
    """
    if isinstance(exp.search.cohort_size, int):
        return exp.search.cohort_size
    space = exp.space
    width = _largest(space.width)
    layers = _largest(space.n_layers)
    dims = [data.n_features, *([width] * layers), max(1, data.n_classes if data.n_classes > 2 else 1)]
    work = sum(a * b for a, b in itertools.pairwise(dims)) * len(data.y_train)
    cap = GPU_MAX_K if gpu else (CPU_MAX_K if work <= CPU_WORK_LIMIT else 1)
    groups = _choices(space.n_layers)
    per_slot = math.ceil(exp.search.num_samples / slots)
    return max(1, min(cap, exp.search.num_samples, per_slot * groups))


# A Ray worker's start with torch's import (3.7-4.3 CPU-s per worker here), in
# cohort_cost's multiply-adds (STEP_OVERHEAD's ~4e9 a second).
WORKER_START = 1.6e10


def slots_worth_starting(exp: ExperimentConfig, data: PreparedData, slots: int) -> int:
    """How many of ``slots`` a search on its own local Ray uses: no more than its training pays for.

    Each slot is a worker process that starts and imports torch first. A smoke search
    trains for a fraction of that (``sign --smoke``: ~0.3 s by the bound below, against
    ~4 CPU-s per worker), so its second worker only took a core from the driver: with one,
    the search used 4-5 CPU-s less (see the README's fixed-cost section). The bound is
    generous: every trial alone at the widest net, the most epochs and the smallest
    batch the space allows.
    """
    space = exp.space
    widest = TrainConfig(
        hidden_widths=(_largest(space.width),) * _largest(space.n_layers),
        epochs=_largest(space.epochs),
        batch_size=_smallest(space.batch_size),
    )
    bound = exp.search.num_samples * cohort_cost([widest], *_cost_shape(data))
    return max(1, min(slots, math.ceil(bound / WORKER_START)))


def _largest(spec: ParamSpec) -> int:
    return int(max(spec.values or [0])) if spec.type == "choice" else int(spec.high or 0)


def _cost_shape(data: PreparedData) -> tuple[int, int, int]:
    """What :func:`tunefleet.cohort_plan.cohort_cost` reads of the data: training rows, features, outputs."""
    return len(data.y_train), data.n_features, n_outputs_for(data.n_classes)


def _smallest(spec: ParamSpec) -> int:
    return int(min(spec.values or [1])) if spec.type == "choice" else int(spec.low or 1)


def _choices(spec: ParamSpec) -> int:
    if spec.type == "choice":
        return len(spec.values or [])
    return int(spec.high or 0) - int(spec.low or 0) + 1


class CohortBackend:
    """Cohorts on Ray tasks (``backend: ray``) or in this process (``backend: optuna``)."""

    def check(self, exp: ExperimentConfig, *, address: str | None) -> None:
        if is_uri(exp.search.storage_path):
            raise TunefleetError("cohorts keep the study on a local or shared path; set --storage-path to one")
        get_backend(exp.search.backend).check(exp, address=address)  # what cohorts run on

    def can_resume(self, exp: ExperimentConfig, name: str) -> bool:
        return has_study(exp.search.storage_path, name)

    @contextmanager
    def open(
        self, exp: ExperimentConfig, data: PreparedData, *, address: str | None, verbose: bool
    ) -> Iterator[CohortSession]:
        if exp.search.backend == "ray":
            from search.cluster import check_resources, is_local, ray_session

            with ray_session(address, verbose=verbose) as resources:
                slots = check_resources(exp, resources)
                if is_local(address):  # a cluster's cohorts spread over its nodes, whatever their size
                    slots = slots_worth_starting(exp, data, slots)
                need = exp.search.resources
                warm_workers(slots, max(need.cpus_per_trial, resources.get("CPU", 0) / slots), need.gpus_per_trial)
                yield CohortSession(exp, slots, gpu=resources.get("GPU", 0) > 0)
        elif exp.search.backend == "optuna":
            from search.optuna_backend import local_gpu

            yield CohortSession(exp, 1, gpu=local_gpu(exp))
        else:
            raise TunefleetError(f"cohorts run on backend ray or optuna, not {exp.search.backend!r}")


class CohortSession:
    def __init__(self, exp: ExperimentConfig, slots: int, gpu: bool) -> None:
        self.exp, self.slots, self.gpu = exp, slots, gpu

    def _runner(self, data: PreparedData, rungs: RungTable | None) -> CohortRunner:
        if self.exp.search.backend == "ray":
            res = self.exp.search.resources
            return RayRunner(data, rungs, self.slots, res.cpus_per_trial, res.gpus_per_trial)
        return LocalRunner(data, rungs)

    def run(self, request: SearchRequest) -> list[TrialRecord]:
        exp, path = request.exp, request.path
        study = open_study(exp, path, constant_liar=True)
        records = ended_before(path, request.observers)
        seed_study(study, request.points, request.warm)
        rungs = rung_table(exp)
        if rungs is not None:
            rungs.refill(records, exp.metric)
        runner = self._runner(request.data, rungs)
        k = auto_cohort_size(exp, request.data, self.slots, self.gpu)
        sample = sampler_for(exp, request.data.task)
        asked: dict[str, optuna.Trial] = {}
        remaining = exp.search.num_samples - len(records)
        started, untold = time.monotonic(), list[TrialRecord]()
        try:
            while remaining > 0 or runner.running():
                over_budget = exp.search.time_budget_s and time.monotonic() - started > exp.search.time_budget_s
                while remaining > 0 and runner.has_room() and not over_budget:
                    size = min(k, remaining)
                    for job in self._ask(study, sample, size, exp, asked, request.data):
                        runner.start(job)
                    remaining -= size
                # The observers (MLflow's child runs: ~0.1 s of driver time per member) hear of
                # the last cohorts' members only now, with the freed slots busy again.
                tell_observers(request.observers, untold)
                untold = []
                if not runner.running():
                    break
                for job, outcomes in runner.wait():
                    with one_sync(study):
                        for trial_id, config, outcome in zip(job.trial_ids, job.configs, outcomes, strict=True):
                            record = self._record(trial_id, asked.pop(trial_id), config, outcome, job.cohort_id, path)
                            untold.append(record)
                records += untold
        finally:
            runner.close()  # no-op unless the loop ended early
        tell_observers(request.observers, untold)
        return records

    def _ask(
        self,
        study: optuna.Study,
        sample: SpaceSampler,
        size: int,
        exp: ExperimentConfig,
        asked: dict[str, optuna.Trial],
        data: PreparedData,
    ) -> list[CohortJob]:
        """Ask ``size`` configs (constant liar) and split them into cohorts (:func:`tunefleet.cohort_plan.plan_cohorts`)."""
        trials = []
        with one_sync(study):
            for _ in range(size):
                trial = study.ask()
                sample(trial)
                trials.append(trial)
        configs = [exp.trial_config(t.params) for t in trials]
        jobs = []
        for group in plan_cohorts(configs, *_cost_shape(data), slots=self.slots):
            ids = tuple(f"trial_{trials[i].number:05d}" for i in group)
            asked.update({ids[j]: trials[i] for j, i in enumerate(group)})
            jobs.append(
                CohortJob(f"cohort_{trials[group[0]].number:05d}", ids, tuple(configs[i] for i in group), exp.metric)
            )
        return jobs

    def _record(
        self, trial_id: str, trial: optuna.Trial, config: TrainConfig, outcome: MemberOutcome, cohort: str, path: Path
    ) -> TrialRecord:
        """The member's record: saved, its bundle written, and the sampler told.

        Only a stopped member's last epoch is reported to the study: it is all TPE reads of
        a pruned trial (and nothing of a finished one), and every report is a journal
        write with an fsync (a whole curve per member cost 1.1 s of 6.4 s for 32 members).
        """
        bundle_dir = None
        if outcome.bundle is not None:
            bundle_dir = str(path / "bundles" / trial_id)
            outcome.bundle.save(bundle_dir)
        record = TrialRecord(
            trial_id,
            dict(trial.params),
            config,
            outcome.status,
            outcome.metrics,
            outcome.history,
            node_id=outcome.node_id,
            error=outcome.error,
            bundle_dir=bundle_dir,
            seconds=outcome.seconds,
            cohort=cohort,
        )
        if outcome.status == "stopped" and outcome.history:  # TPE ranks a pruned trial by its last report
            last = outcome.history[-1]
            value = last.get(self.exp.metric, math.nan)
            if not math.isnan(value):
                trial.report(value, int(last["epoch"]))
        tell(trial.study, trial, record, self.exp.metric)
        save_record(path, record)
        return record
