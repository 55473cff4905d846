"""One schedule for every way of running trials: its rungs, and when a trial is judged."""

from __future__ import annotations

import math

import pytest

from tunefleet.search import load_experiment
from tunefleet.search.schedule import Schedule, report_epochs, rung_epochs, rung_value


def test_the_last_epoch_is_never_a_rung() -> None:
    assert rung_epochs(5, 3, 60) == (5, 15, 45)
    assert rung_epochs(5, 3, 45) == (5, 15)  # 45 is the end: a trial there finished, it is not judged
    assert rung_epochs(2, 3, 40) == (2, 6, 18)


def test_a_trial_that_reaches_a_rung_first_but_is_worse_than_its_round_mates_is_stopped() -> None:
    """Judged together (sh): the trial that would have arrived first (lowest id) and is worst goes.
    On arrival (asha, as Ray's ASHA judges), the first trial at a rung always goes on."""
    values = {"trial_00000": 0.70, "trial_00001": 0.95, "trial_00002": 0.90, "trial_00003": 0.85}
    together = Schedule("sh", (5, 15), 3, "max").keep(5, values)
    assert together == {"trial_00001", "trial_00002"}  # the top ceil(4/3) = 2
    on_arrival = Schedule("asha", (5, 15), 3, "max").keep(5, values)
    assert "trial_00000" in on_arrival  # first at the rung: nothing to compare it with
    assert together != on_arrival


def test_a_later_round_is_judged_against_every_value_recorded_at_the_rung() -> None:
    schedule = Schedule("sh", (5,), 2, "min")  # losses: lower is better
    assert schedule.keep(5, {"a": 0.3, "b": 0.5}) == {"a"}
    assert schedule.keep(5, {"c": 0.4, "d": 0.2}) == {"d"}  # the top 2 of 4: d (0.2) and a (0.3)
    assert schedule.recorded[5] == {"a": 0.3, "b": 0.5, "c": 0.4, "d": 0.2}
    assert schedule.keep(5, {"e": math.nan}) == set()  # a NaN never goes on


def test_one_trial_at_a_time_is_judged_against_those_before_it() -> None:
    schedule = Schedule("sh", (5, 15), 3, "max")
    assert not schedule.stops("t0", 5, 0.5)  # the first value at a rung
    assert schedule.stops("t1", 5, 0.4) and not schedule.stops("t2", 5, 0.9)
    assert not schedule.stops("t3", 7, 0.0)  # not a rung


def test_every_loop_reads_the_same_rungs() -> None:
    """The Tune trial's reporter reports at the cohort rounds' rungs; the last epoch is none of them."""

    def exp(scheduler: str):
        return load_experiment("breast_cancer", overrides=["space.epochs={type: int, low: 10, high: 45}"],
                               values={"search.scheduler.name": scheduler})  # fmt: skip

    milestones, every = report_epochs(exp("sh"))
    assert milestones == frozenset(Schedule.of(exp("sh")).rungs) == frozenset({5, 15}) and every is None
    assert report_epochs(exp("median")) == (frozenset(), exp("median").search.report_every_epochs)
    assert Schedule.of(exp("none")).rungs == ()


def test_a_resumed_search_puts_its_rung_values_back() -> None:
    from tunefleet.search.result import TrialRecord
    from tunefleet.train_config import TrainConfig

    history = [{"epoch": float(e), "val_roc_auc": 0.5 + e / 100} for e in range(1, 17)]
    schedule = Schedule("sh", (5, 15), 3, "max")
    schedule.refill([TrialRecord("t0", {}, TrainConfig(), "stopped", history=history)], "val_roc_auc")
    assert schedule.recorded == {5: {"t0": pytest.approx(0.55)}, 15: {"t0": pytest.approx(0.65)}}
    assert rung_value(history, 15, "val_roc_auc") == pytest.approx(0.65) and math.isnan(rung_value(history, 99, "x"))
