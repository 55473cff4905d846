"""``search.backend: optuna``: this process is where trials run, one at a time; no Ray.

Nothing to start ahead or to shut down: the lease only checks that a GPU the spec asks
for is there, and hands cohorts a runner that trains them in this process.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunefleet.errors import TunefleetError
from tunefleet.search.cohort_jobs import CohortJob, CohortRunner, TrialOutcome, run_cohort

if TYPE_CHECKING:
    from tunefleet.search.experiment import ExperimentConfig
    from tunefleet.splits import PreparedData


@dataclass(frozen=True)
class InProcessLease:
    """One slot, this process's GPU if it has one; cohorts train here, one after another."""

    gpu: bool
    slots: int = 1
    own: bool = True

    def warm(self, slots: int) -> None:
        """Nothing to warm: this process imports torch when its first cohort trains."""

    def cohort_runner(self, data: PreparedData, slots: int) -> CohortRunner:
        return LocalRunner(data)


class InProcessBackend:
    """One process, this machine: no cluster to connect to, so only the GPU ask is checked."""

    trial_loop = "tunefleet.search.in_process.loop:StudyLoop"

    def check(self, exp: ExperimentConfig, *, address: str | None) -> None:
        """Nothing to reach: trials run in this process."""

    def prepare(self, exp: ExperimentConfig, *, address: str | None, verbose: bool) -> None:
        """Nothing to start ahead."""

    @contextmanager
    def lease(
        self, exp: ExperimentConfig, data: PreparedData, *, address: str | None, verbose: bool
    ) -> Iterator[InProcessLease]:
        yield InProcessLease(gpu=local_gpu(exp))

    def close(self) -> None:
        """Nothing was started."""


def local_gpu(exp: ExperimentConfig) -> bool:
    """Whether trials trained in this process have a GPU; one line when the spec asks for one that is not here."""
    import torch

    gpu = torch.cuda.is_available()
    if exp.search.resources.gpus_per_trial > 0 and not gpu:
        raise TunefleetError(
            f"--gpus-per-trial {exp.search.resources.gpus_per_trial:g} asked for, but this machine has no GPU "
            "that torch can use; drop the flag"
        )
    if exp.train.device == "cuda" and not gpu:
        raise TunefleetError("train.device is cuda, but this machine has no GPU that torch can use; leave it at auto")
    return gpu


class LocalRunner:
    """Cohorts one after another in this process (``backend: optuna``)."""

    def __init__(self, data: PreparedData) -> None:
        self.data = data
        self.jobs: list[CohortJob] = []

    def start(self, jobs: Sequence[CohortJob]) -> None:
        self.jobs = list(jobs)

    def results(self) -> list[list[TrialOutcome]]:
        jobs, self.jobs = self.jobs, []
        return [run_cohort(job, self.data) for job in jobs]

    def close(self) -> None:
        self.jobs = []
