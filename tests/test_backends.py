"""Backends and loops: chosen by name and by the spec, each refusing in one line what it cannot run."""

from __future__ import annotations

from contextlib import contextmanager
from typing import ClassVar

import pytest

from tunefleet.errors import ConfigError, TunefleetError
from tunefleet.search.experiment import load_experiment


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("bogus", "unknown backend 'bogus'; use one of: optuna, ray$"),
        ("cohort", "unknown backend 'cohort'; use one of: optuna, ray; cohorts are chosen by --cohort-size K"),
    ],
)
def test_a_search_names_a_backend_trials_run_on(tmp_path, backend: str, message: str) -> None:
    """`search.backend: cohort` (the cohort driver's name) is refused in one line; it recursed."""
    from tunefleet.search.run import check_search

    exp = load_experiment("sign", values={"search.backend": backend, "search.storage_path": str(tmp_path)})
    with pytest.raises(ConfigError, match=message):
        check_search(exp, exp.load())
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_cuda_device_without_a_gpu_for_its_trials_is_refused_before_they_start() -> None:
    """Every trial failed with torch's "Found no NVIDIA driver", and only then did the search end."""
    import torch

    from tunefleet.search.in_process.backend import local_gpu
    from tunefleet.search.ray.connect import check_resources

    cuda = load_experiment("sign", values={"train.device": "cuda"})
    with pytest.raises(TunefleetError, match="train.device is cuda, but trials hold no GPU .* pass --gpus-per-trial"):
        check_resources(cuda, {"CPU": 2.0, "GPU": 1.0})  # Ray hides the GPUs from a trial that asks for none
    with_gpus = load_experiment("sign", values={"train.device": "cuda", "search.resources.gpus_per_trial": 0.5})
    assert check_resources(with_gpus, {"CPU": 2.0, "GPU": 1.0}) == 2
    if not torch.cuda.is_available():
        with pytest.raises(
            TunefleetError, match="train.device is cuda, but this machine has no GPU that torch can use"
        ):
            local_gpu(cuda)
    assert local_gpu(load_experiment("sign")) == torch.cuda.is_available()


class CountingBackend:
    """A backend of the test's own: this process, with a runner that counts the cohorts it trains."""

    trial_loop = "tunefleet.search.in_process.loop:StudyLoop"
    trained: ClassVar[list[int]] = []

    def check(self, exp, *, address) -> None:
        pass

    def prepare(self, exp, *, address, verbose) -> None:
        pass

    @contextmanager
    def lease(self, exp, data, *, address, verbose):
        from tunefleet.search.in_process.backend import InProcessLease

        class Counting(InProcessLease):
            def cohort_runner(self, data, slots):
                runner = super().cohort_runner(data, slots)
                start = runner.start
                runner.start = lambda jobs: (CountingBackend.trained.extend(len(j.trials) for j in jobs), start(jobs))[
                    1
                ]
                return runner

        yield Counting(gpu=False)

    def close(self) -> None:
        pass


def test_a_new_backend_is_a_class_and_a_registry_line(tmp_path, monkeypatch) -> None:
    """Cohorts ask the lease for their runner, slots and device: they run on a backend they
    have never heard of, and its own loop runs one trial at a time on it."""
    from tunefleet.search import backends, run_search

    monkeypatch.setitem(backends.BACKENDS, "counting", f"{__name__}:CountingBackend")
    CountingBackend.trained.clear()
    values = {"search.backend": "counting", "search.storage_path": str(tmp_path), "search.num_samples": 6}
    cohorts = run_search(load_experiment("sign", smoke=True, values=values), progress=False)
    assert len(cohorts.trials) == 6 and sum(CountingBackend.trained) >= 6 and cohorts.backend == "counting"
    one_by_one = load_experiment("sign", smoke=True, values={**values, "search.cohort_size": 1})
    trained = sum(CountingBackend.trained)
    assert len(run_search(one_by_one, progress=False).trials) == 6
    assert sum(CountingBackend.trained) == trained  # the backend's own loop trains no cohorts
