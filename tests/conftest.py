"""Shared fixtures: the shared MNIST subset, small prepared datasets, each test's process state;
and the fast suite's import guard (:mod:`tests.import_guard`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.import_guard"]

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

    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def breast_cancer_data():
    from tunefleet.catalog import dataset_conf

    return dataset_conf("breast_cancer").load()


TRACKING, REGISTRY = "mlflow.tracking._tracking_service.utils", "mlflow.tracking._model_registry.utils"


def _mlflow_uris() -> tuple[Any, Any]:
    """MLflow's store URIs as its module globals hold them (None, None before MLflow is imported)."""
    tracking, registry = sys.modules.get(TRACKING), sys.modules.get(REGISTRY)
    return getattr(tracking, "_tracking_uri", None), getattr(registry, "_registry_uri", None)


@contextmanager
def restored_process_state() -> Iterator[None]:
    """Undo what in-process CLI calls leave behind, so every test passes alone and in any order.

    ``tunefleet`` commands own their process: they set MLflow's store URIs (MLflow keeps
    them in module globals and the environment) and the libraries' log levels through
    environment variables that child processes inherit. Tests run many commands in one
    process, so each test, and each module (whose fixtures may run commands), gets the
    environment and MLflow URIs it started with back. MLflow is not imported for that: a
    test that never imported it has no URIs to restore (the fast suite imports none).
    """
    env = dict(os.environ)
    uris = _mlflow_uris()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(env)
        if TRACKING in sys.modules:
            sys.modules[TRACKING]._tracking_uri = uris[0]  # type: ignore[attr-defined]
        if REGISTRY in sys.modules:
            sys.modules[REGISTRY]._registry_uri = uris[1]  # type: ignore[attr-defined]


@pytest.fixture(autouse=True, scope="module")
def _module_process_state() -> Iterator[None]:
    with restored_process_state():
        yield


@pytest.fixture(autouse=True)
def _test_process_state() -> Iterator[None]:
    with restored_process_state():
        yield
