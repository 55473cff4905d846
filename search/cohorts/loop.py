"""Cohort search: TPE asks configs in waves; cohorts train them as one batched model, round by round.

Chosen by ``search.cohort_size`` (``--cohort-size K`` or ``auto``); cohorts train on the
runner ``search.backend``'s lease hands out (:class:`tunefleet.search.backends.Lease`): Ray
tasks on a local Ray or a cluster, or this process. Every trial stays a full trial: its own
record, child run and bundle (its K fold models, under cross-validation: they train as
members of the same cohort). A search runs in **rounds**; in each:

1. **Ask**: the free capacity (one wave, :mod:`tunefleet.search.waves`) is filled with new
   configs, TPE told of every trial that ended before. A trial stopped at a rung frees its
   place, so the next round *refills* it while the budget (and ``--time-budget``) lasts.
2. **Train**: every live trial trains to its next rung or its end, the round's trials
   packed into cohorts over the free slots (:func:`tunefleet.cohort_plan.plan_cohorts`),
   each paused trial resumed exactly where it stopped.
3. **Judge**: the trials that reached a rung are judged together, once all of them have
   (:mod:`tunefleet.search.schedule`); the rest of the round is recorded as it ended.

Everything a round decides is read in trial id order, never in the order cohorts come
back, and every member is independent of its cohort mates, so a seeded search gives the
same trials, the same stops and the same results run after run on one machine.
``--resume``: the study and the ended trials are on disk (:mod:`tunefleet.search.study`);
the trials a killed driver had in training are asked again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

from tunefleet.config import is_uri
from tunefleet.errors import TunefleetError
from tunefleet.search.backends import Lease, SearchRequest
from tunefleet.search.cohort_jobs import CohortJob, TrialJob, TrialOutcome, views_of
from tunefleet.search.cohorts.sizing import cohort_cap, cost_shape, slots_worth_starting
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import Status, TrialRecord, save_trial_model, tell_observers
from tunefleet.search.schedule import Schedule, rung_value
from tunefleet.search.study import ended_before, has_study, one_sync, save_record, seed_study, tell
from tunefleet.search.waves import ask_wave, open_waves
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


@dataclass
class Live:
    """A trial in training: its study trial, its config, where its members stand."""

    trial: optuna.Trial
    config: TrainConfig
    outcome: TrialOutcome | None = None  # its last round's
    seconds: float = 0.0
    cohort: str = ""

    @property
    def epoch(self) -> int:
        return len(self.outcome.history) if self.outcome else 0

    def job(self, trial_id: str, until: int | None) -> TrialJob:
        """Its part of a cohort this round: resumed where it paused (fresh at first), trained to ``until``."""
        return TrialJob(trial_id, self.config, self.outcome.states if self.outcome else None, until)


class CohortSession:
    def __init__(self, exp: ExperimentConfig, lease: Lease, slots: int) -> None:
        self.exp, self.lease, self.slots = exp, lease, slots

    def run(self, request: SearchRequest) -> list[TrialRecord]:
        exp, path, data = request.exp, request.path, request.data
        study, wave = open_waves(exp, path, self.slots, self.lease.gpu)
        records = ended_before(path, request.observers)
        seed_study(study, request.points, request.warm)
        schedule = Schedule.of(exp)
        schedule.refill(records, exp.metric)
        runner = self.lease.cohort_runner(data, self.slots)
        sample = exp.sampler(data.task)
        live: dict[str, Live] = {}
        remaining, started = exp.search.num_samples - len(records), time.monotonic()
        untold: list[TrialRecord] = []
        try:
            while True:
                budget = exp.search.time_budget_s
                if remaining > 0 and not (budget and time.monotonic() - started > budget):
                    n = min(remaining, wave - len(live))
                    for trial in ask_wave(study, sample, n):
                        live[f"trial_{trial.number:05d}"] = Live(trial, exp.trial_config(trial.params))
                    remaining -= n
                if not live:
                    break
                jobs = self._jobs(live, schedule, data)
                runner.start(jobs)
                # The observers (MLflow's child runs: ~0.1 s of driver time a trial) hear of the last
                # round's trials now, while this round's cohorts train.
                tell_observers(request.observers, untold)
                untold = self._round(live, jobs, runner.results(), schedule, study, path)
                records += untold
        finally:
            runner.close()  # no-op unless the loop ended early
        tell_observers(request.observers, untold)
        return records

    def _jobs(self, live: dict[str, Live], schedule: Schedule, data: PreparedData) -> list[CohortJob]:
        """This round's cohorts: each live trial to its next rung (or its end), folds together, the longest first."""
        ids = sorted(live)
        targets = {t: schedule.next_rung(live[t].epoch) for t in ids}
        remaining = [  # what each trial has left this round, for the plan's costs
            live[t].config.model_copy(update={"epochs": (targets[t] or live[t].config.epochs) - live[t].epoch})
            for t in ids
        ]
        from tunefleet.cohort_plan import plan_cohorts  # no torch: the driver plans cohorts

        widest = self.exp.space["width"].largest()
        cap = cohort_cap(self.exp, data, self.lease.gpu)
        members = len(views_of(data))
        jobs = []
        for group in plan_cohorts(
            remaining, *cost_shape(data), slots=self.slots, members=members, widest=widest, cap=cap
        ):
            trials = tuple(live[ids[i]].job(ids[i], targets[ids[i]]) for i in group)
            cohort_id = f"cohort_{live[ids[group[0]]].trial.number:05d}_e{live[ids[group[0]]].epoch}"
            for t in trials:
                live[t.trial_id].cohort = cohort_id
            jobs.append(CohortJob(cohort_id, trials, widest))
        return jobs

    def _round(
        self, live: dict[str, Live], jobs: list[CohortJob], results: list[list[TrialOutcome]], schedule: Schedule,
        study: optuna.Study, path: Path,
    ) -> list[TrialRecord]:  # fmt: skip
        """Read a round's outcomes in trial id order; judge the trials that reached a rung; record what ended."""
        by_id = {
            t.trial_id: o
            for job, outs in zip(jobs, results, strict=True)
            for t, o in zip(job.trials, outs, strict=True)
        }
        ended, at_rung = set(), dict[int, dict[str, float]]()
        for trial_id in sorted(by_id):
            trial, outcome = live[trial_id], by_id[trial_id]
            trial.outcome, trial.seconds = outcome, trial.seconds + outcome.seconds
            if outcome.status != "paused":
                ended.add(trial_id)
            elif trial.epoch in schedule.rungs:
                at_rung.setdefault(trial.epoch, {})[trial_id] = rung_value(
                    outcome.history, trial.epoch, self.exp.metric
                )
        stopped: set[str] = set()
        for rung, values in sorted(at_rung.items()):
            stopped |= set(values) - schedule.keep(rung, values)
        with one_sync(study):
            return [self._record(t, live.pop(t), t in stopped, path) for t in sorted(ended | stopped)]

    def _record(self, trial_id: str, trial: Live, stopped: bool, path: Path) -> TrialRecord:
        """The trial's record: saved (with its bundle and validation predictions), and the sampler told.

        Only a stopped trial's last rung is reported to the study: it is all TPE reads of a
        pruned trial (and nothing of a finished one), and every report is a journal write.
        """
        outcome = trial.outcome
        assert outcome is not None
        status: Status = "stopped" if stopped else "finished" if outcome.status == "finished" else "failed"
        bundle_dir = None
        if status == "finished" and outcome.bundle is not None:
            bundle_dir = save_trial_model(outcome.bundle, outcome.val_probabilities, path / "bundles" / trial_id)
        last = dict(outcome.history[-1]) if outcome.history else {}
        record = TrialRecord(
            trial_id, dict(trial.trial.params), trial.config, status, outcome.metrics if status == "finished" else last,
            outcome.history, node_id=outcome.node_id, error=outcome.error,
            bundle_dir=str(bundle_dir) if bundle_dir else None, seconds=trial.seconds, cohort=trial.cohort,
        )  # fmt: skip
        value = last.get(self.exp.metric, math.nan)
        if status == "stopped" and not math.isnan(value):  # TPE ranks a pruned trial by its last report
            trial.trial.report(value, int(last["epoch"]))
        tell(trial.trial.study, trial.trial, record, self.exp.metric)
        save_record(path, record)
        return record
