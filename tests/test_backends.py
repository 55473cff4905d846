"""Backends and loops: chosen by name and by the spec, each refusing in one line what it cannot run."""

from __future__ import annotations

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
