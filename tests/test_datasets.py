"""Datasets, stratified splits, split hashes and train-only scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunefleet.datasets import load_dataset, table_to_dataset
from tunefleet.errors import ConfigError, DataError
from tunefleet.splits import SplitSpec, prepare_data


@pytest.mark.parametrize(
    ("name", "n", "d", "k"),
    [("breast_cancer", 569, 30, 2), ("student_hours", 6, 2, 2), ("sign", 20, 1, 2), ("threshold_1d", 40, 1, 2)],
)
def test_builtin_shapes(name: str, n: int, d: int, k: int) -> None:
    ds = load_dataset(name)
    assert ds.X.shape == (n, d) and ds.X.dtype == np.float32
    assert ds.y.shape == (n,) and ds.n_classes == k


def test_toy_definitions() -> None:
    sign = load_dataset("sign")
    assert sorted(sign.X[:, 0].tolist()) == sorted([*range(1, 11), *range(-10, 0)])
    assert np.array_equal(sign.y, (sign.X[:, 0] > 0).astype(int))
    t1d = load_dataset("threshold_1d")
    assert np.array_equal(t1d.y, (np.arange(-2, 2, 0.1) > 0.2).astype(int))


def test_mnist_through_torchvision(mnist_root) -> None:
    ds = load_dataset("mnist", {"root": str(mnist_root), "download": False})
    assert ds.X.shape == (6000, 784) and ds.X_test is not None and ds.X_test.shape == (2000, 784)
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0 and ds.n_classes == 10
    data = prepare_data(ds, SplitSpec())
    assert len(data.y_test) == 2000  # the official test split is kept
    assert len(data.y_train) + len(data.y_val) == 6000
    assert abs(len(data.y_val) / 6000 - 0.25) < 0.01  # val / (train + val)


def test_mnist_missing_gives_one_line_error(tmp_path) -> None:
    with pytest.raises(DataError, match="MNIST not found") as err:
        load_dataset("mnist", {"root": str(tmp_path), "download": False})
    assert "\n" not in str(err.value)


def test_mnist_download_failure_gives_one_short_line(tmp_path, monkeypatch) -> None:
    """With download on and no mirror reachable (a closed local port: no network needed), the
    error says the download failed, without torchvision's per-mirror URL list."""
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError, match="downloading it failed") as err:
        load_dataset("mnist", {"root": str(tmp_path), "download": True})
    assert "\n" not in str(err.value) and "127.0.0.1" not in str(err.value)


# ---- user files -------------------------------------------------------------------


def test_unknown_loader_and_option() -> None:
    with pytest.raises(ConfigError, match="unknown dataset loader 'nope'"):
        load_dataset("nope")
    with pytest.raises(ConfigError, match="dataset.options.rooot"):
        load_dataset("mnist", {"rooot": "x"})


def test_table_to_dataset_selected_features() -> None:
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": ["x", "y", "z", "w"], "y": [0, 1, 0, 1]})
    ds = table_to_dataset(frame, "y", "mem", features=["a"])
    assert ds.feature_names == ("a",)
    with pytest.raises(DataError, match="target column 'y' is listed as a feature; leave it out"):
        table_to_dataset(frame, "y", "mem", features=["a", "y"])  # the label as an input
