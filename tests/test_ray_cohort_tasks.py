"""Cohorts as Ray tasks: Ray is handed no more cohorts than slots, the rest wait in the driver."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tunefleet.search.cohort_jobs import CohortJob
from tunefleet.search.ray.cohort_tasks import RayRunner
from tunefleet.train_config import TrainConfig

pytestmark = pytest.mark.integration


def _job(i: int) -> CohortJob:
    configs = tuple(TrainConfig(epochs=2, lr=0.01 * (k + 1), seed=k, torch_threads=1, device="cpu") for k in range(2))
    return CohortJob(f"cohort_{i}", (f"trial_{i}_0", f"trial_{i}_1"), configs, "val_roc_auc")


def test_ray_gets_no_more_cohorts_than_slots(local_ray, breast_cancer_data) -> None:
    """A task blocked asking the rung table lends its CPU to any task queued in Ray, which then
    starts a fresh worker for it; so cohorts beyond the slots wait in the driver, and each
    one that ends hands the next to Ray before the driver sees its members."""
    runner = RayRunner(breast_cancer_data, None, slots=1, cpus=1, gpus=0)
    for i in range(3):
        runner.start(_job(i))
    assert (len(runner.refs), len(runner.waiting), runner.running()) == (1, 2, 3)
    assert not runner.has_room()  # a cohort waits: asking more now would only tell TPE less
    ended = []
    while runner.running():
        done = runner.wait()
        assert len(runner.refs) <= 1
        assert len(runner.refs) == min(1, runner.running())  # the next one started at once
        ended += done
        assert runner.has_room() == (not runner.waiting)
    assert sorted(job.cohort_id for job, _ in ended) == ["cohort_0", "cohort_1", "cohort_2"]
    assert all(o.status == "finished" for _, outcomes in ended for o in outcomes)


def test_one_slot_carries_the_rung_table_and_judges_as_one_table_would(local_ray, breast_cancer_data) -> None:
    """With one slot, each cohort carries a copy of the rung table instead of asking an actor;
    every member is judged as the in-process runner's single table judges it, cohort after cohort."""
    from tunefleet.search.in_process.backend import LocalRunner
    from tunefleet.search.rungs import RungTable

    def jobs() -> list[CohortJob]:
        out = []
        for i in range(3):
            lrs = [10 ** (-4 + (k + i) % 4) * 0.3 for k in range(4)]
            configs = tuple(
                TrainConfig(epochs=8, lr=lr, optimizer="sgd", seed=k, torch_threads=1, device="cpu")
                for k, lr in enumerate(lrs)
            )
            out.append(CohortJob(f"cohort_{i}", tuple(f"trial_{i}_{k}" for k in range(4)), configs, "val_roc_auc"))
        return out

    def run(runner, table) -> tuple[list[str], dict]:
        statuses = []
        for job in jobs():
            runner.start(job)
            ((_, outcomes),) = runner.wait()
            statuses += [o.status for o in outcomes]
        return statuses, table.values

    local = RungTable((2, 4), reduction_factor=2, mode="max")
    expected = run(LocalRunner(breast_cancer_data, local), local)
    carried = RungTable((2, 4), reduction_factor=2, mode="max")
    runner = RayRunner(breast_cancer_data, carried, slots=1, cpus=1, gpus=0)
    assert runner.judge is None  # no table actor
    assert run(runner, carried) == expected
    assert "stopped" in expected[0] and len(expected[1][2]) == 12  # ASHA stopped members; every member reached rung 2


def _executing(function: str, timeout_s: float = 60.0) -> int:
    """The pid of the Ray worker running ``function`` now (Ray titles it ``ray::<function>``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if f"ray::{function}".encode() in cmdline.read_bytes():
                    return int(cmdline.parent.name)
            except OSError:  # the process ended while we looked
                continue
        time.sleep(0.1)
    raise AssertionError(f"no worker started {function} in {timeout_s:g} s")


def test_close_cancels_the_running_cohorts_so_ray_never_retries_them(local_ray, breast_cancer_data) -> None:
    """A search that ends early (Ctrl-C) closes its runner before Ray shuts down. A cohort
    left running died with the session's workers, and Ray took that for a failure to retry:
    it printed "Failed to push error to driver" to the interrupted command (seen in CI).
    Here the worker dies after close(): the cohort ends in an error instead of a retry."""
    import ray
    from ray.exceptions import RayError

    runner = RayRunner(breast_cancer_data, None, slots=1, cpus=1, gpus=0)
    long = tuple(TrainConfig(epochs=300, lr=0.001, seed=k, torch_threads=1, device="cpu") for k in range(2))
    runner.start(CohortJob("cohort_long", ("trial_a", "trial_b"), long, "val_roc_auc"))
    runner.start(_job(1))
    (ref,) = runner.refs
    worker = _executing("_ray_cohort")
    runner.close()
    assert runner.running() == 0  # the waiting cohort is dropped: its members were never logged
    os.kill(worker, signal.SIGKILL)  # as the session's workers die when the driver leaves
    with pytest.raises(RayError):  # cancelled (or its worker lost), never retried to a result
        ray.get(ref, timeout=120)
