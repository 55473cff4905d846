"""Cohorts as Ray tasks: Ray is handed no more cohorts than slots, the rest wait in the driver; a
cohort's outcome is the same trained there or here, paused and resumed or not."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tunefleet.search.cohort_jobs import CohortJob, TrialJob
from tunefleet.search.in_process.backend import LocalRunner
from tunefleet.search.ray.cohort_tasks import RayRunner
from tunefleet.train_config import TrainConfig

pytestmark = pytest.mark.integration


def _job(i: int, epochs: int = 2, until: int | None = None) -> CohortJob:
    configs = [TrainConfig(epochs=epochs, lr=0.01 * (k + 1), seed=k, torch_threads=1, device="cpu") for k in range(2)]
    return CohortJob(
        f"cohort_{i}", tuple(TrialJob(f"trial_{i}_{k}", c, None, until) for k, c in enumerate(configs)), 16
    )


def test_ray_gets_no_more_cohorts_than_slots(local_ray, breast_cancer_data) -> None:
    """A task blocked in Ray lends its CPU to any task queued there, which then starts a fresh
    worker for it; so cohorts beyond the slots wait in the driver, and come back in job order."""
    runner = RayRunner(breast_cancer_data, slots=1, cpus=1, gpus=0)
    runner.start([_job(i) for i in range(3)])
    assert len(runner.refs) == 1  # the other two wait here
    results = runner.results()
    assert not runner.refs and len(results) == 3
    assert [[o.status for o in outcomes] for outcomes in results] == [["finished"] * 2] * 3
    local = LocalRunner(breast_cancer_data)
    local.start([_job(i) for i in range(3)])
    same = [[o.metrics for o in outcomes] for outcomes in local.results()]
    assert [[o.metrics for o in outcomes] for outcomes in results] == same  # Ray task or this process: one result


def test_a_trial_paused_in_a_ray_task_resumes_here_as_if_never_paused(local_ray, breast_cancer_data) -> None:
    """A paused trial's states come back from the worker as bytes the driver hands on unread; a
    cohort resumed from them in another process ends where one uninterrupted run ends."""
    runner = RayRunner(breast_cancer_data, slots=1, cpus=1, gpus=0)
    runner.start([_job(0, epochs=6, until=3)])
    (paused,) = runner.results()
    assert [o.status for o in paused] == ["paused", "paused"] and all(isinstance(o.states, bytes) for o in paused)
    resumed = CohortJob(
        "cohort_0",
        tuple(replace(t, states=o.states, until=None) for t, o in zip(_job(0, epochs=6).trials, paused, strict=True)),
        16,
    )
    local = LocalRunner(breast_cancer_data)
    local.start([resumed])
    (ended,) = local.results()
    local.start([_job(0, epochs=6)])
    (whole,) = local.results()
    assert [o.history for o in ended] == [o.history for o in whole]
    assert [o.metrics for o in ended] == [o.metrics for o in whole]


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

    runner = RayRunner(breast_cancer_data, slots=1, cpus=1, gpus=0)
    long = CohortJob("cohort_long", (TrialJob("trial_a", TrainConfig(epochs=300, lr=0.001, torch_threads=1)),), 16)
    runner.start([long, _job(1)])
    (ref,) = runner.refs
    worker = _executing("_ray_cohort")
    runner.close()
    assert not runner.refs and not runner.jobs  # the waiting cohort is dropped: its members were never logged
    os.kill(worker, signal.SIGKILL)  # as the session's workers die when the driver leaves
    with pytest.raises(RayError):  # cancelled (or its worker lost), never retried to a result
        ray.get(ref, timeout=120)
