"""Cohort search: TPE asks K configs at a time and each cohort trains them as one batched model.

Chosen by ``search.cohort_size`` (``--cohort-size K`` or ``auto``); cohorts run on what
``search.backend``'s lease hands out (:class:`tunefleet.search.backends.Lease`): Ray tasks
on a local Ray or a cluster, or this process. Every member stays a full trial (its own TrialRecord, child
run and bundle), and the sampler, early stopping and resume keep their meaning:

- **Sampler**: Optuna's seeded TPE with ``constant_liar``. The K configs of a cohort
  are asked before any of them is told, so without the liar TPE would propose K near
  copies of its current favourite; with it, asked-but-running trials count as bad and
  the K spread out. Every member is told, stopped members as pruned with their last value.
- **Early stopping**: ASHA at the member level (:mod:`tunefleet.search.rungs`), one rung table
  for all cohorts of the search.
- **Resume**: the study and ended records are on disk (:mod:`tunefleet.search.study`); a killed
  driver's cohorts are re-asked and re-run.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import optuna

from tunefleet.cohort_plan import plan_cohorts
from tunefleet.config import is_uri
from tunefleet.errors import TunefleetError
from tunefleet.search.backends import Lease, SearchRequest
from tunefleet.search.cohort_jobs import CohortJob, MemberOutcome
from tunefleet.search.cohorts.sizing import auto_cohort_size, cost_shape, slots_worth_starting
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import TrialRecord, tell_observers
from tunefleet.search.rungs import rung_table
from tunefleet.search.space import SpaceSampler
from tunefleet.search.study import ended_before, has_study, one_sync, open_study, save_record, seed_study, tell
from tunefleet.splits import PreparedData
from tunefleet.train_config import TrainConfig


class CohortLoop:
    """Cohorts on whatever the backend lends: Ray tasks on a local Ray or a cluster, or this process."""

    def check(self, exp: ExperimentConfig) -> None:
        if is_uri(exp.search.storage_path):
            raise TunefleetError("cohorts keep the study on a local or shared path; set --storage-path to one")

    def can_resume(self, exp: ExperimentConfig, name: str) -> bool:
        return has_study(exp.search.storage_path, name)

    def open(self, exp: ExperimentConfig, data: PreparedData, lease: Lease, *, verbose: bool) -> CohortSession:
        """Use the slots the training pays for (a cluster's cohorts spread over its nodes, whatever their
        size), and have their workers import torch now, while the observers start."""
        slots = slots_worth_starting(exp, data, lease.slots) if lease.own else lease.slots
        lease.warm(slots)
        return CohortSession(exp, lease, slots)


class CohortSession:
    def __init__(self, exp: ExperimentConfig, lease: Lease, slots: int) -> None:
        self.exp, self.lease, self.slots = exp, lease, slots

    def run(self, request: SearchRequest) -> list[TrialRecord]:
        exp, path = request.exp, request.path
        study = open_study(exp, path, constant_liar=True)
        records = ended_before(path, request.observers)
        seed_study(study, request.points, request.warm)
        rungs = rung_table(exp)
        if rungs is not None:
            rungs.refill(records, exp.metric)
        runner = self.lease.cohort_runner(request.data, rungs, self.slots)
        k = auto_cohort_size(exp, request.data, self.slots, self.lease.gpu)
        sample = exp.sampler(request.data.task)
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
        for group in plan_cohorts(configs, *cost_shape(data), slots=self.slots):
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
