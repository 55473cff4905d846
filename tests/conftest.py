"""Shared fixtures: the shared MNIST subset, small prepared datasets, temp working dirs."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def breast_cancer_data():
    from tunefleet.catalog import dataset_conf

    return dataset_conf("breast_cancer").load()
