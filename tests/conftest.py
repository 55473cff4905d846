"""Shared fixtures: the shared MNIST subset, small prepared datasets, temp working dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_ROOT = (REPO.parent / "shared" / "data" / "mnist-subset").resolve()

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNEFLEET_CONF", str(REPO / "conf"))


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    if not (MNIST_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"shared MNIST subset not found at {MNIST_ROOT}")
    return MNIST_ROOT


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A fresh in-process Ray with 2 CPUs for one test module (never a cluster `ray start` left around)."""
    import ray

    from search.cluster import wait_for_shutdown

    wait_for_shutdown()  # an earlier test's search may still be shutting its local Ray down
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def breast_cancer_data():
    from tunefleet.catalog import dataset_conf

    return dataset_conf("breast_cancer").load()


@contextmanager
def restored_process_state() -> Iterator[None]:
    """Undo what in-process CLI calls leave behind, so every test passes alone and in any order.

    ``tunefleet`` commands own their process: they set MLflow's store URIs (MLflow keeps
    them in module globals and the environment) and the libraries' log levels through
    environment variables that child processes inherit. Tests run many commands in one
    process, so each test, and each module (whose fixtures may run commands), gets the
    environment and MLflow URIs it started with back.
    """
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    env = dict(os.environ)
    uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(env)
        tracking_utils._tracking_uri, registry_utils._registry_uri = uris


@pytest.fixture(autouse=True, scope="module")
def _module_process_state() -> Iterator[None]:
    with restored_process_state():
        yield


@pytest.fixture(autouse=True)
def _test_process_state() -> Iterator[None]:
    with restored_process_state():
        yield
