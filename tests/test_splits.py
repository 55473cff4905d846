"""Stratified splits, their hash, and the scaler fitted on train only."""

from __future__ import annotations

import numpy as np
import pytest

from tunefleet.catalog import dataset_conf
from tunefleet.datasets import load_dataset
from tunefleet.errors import ConfigError, DataError
from tunefleet.splits import SplitSpec, Standardizer, prepare_data, stratified_indices


@pytest.mark.parametrize("name", ["breast_cancer", "student_hours", "sign", "threshold_1d"])
def test_split_is_stratified_disjoint_complete(name: str) -> None:
    ds = load_dataset(name)
    parts = stratified_indices(ds.y, (0.6, 0.2, 0.2), seed=3)
    joined = np.concatenate(parts)
    assert len(joined) == len(ds.y) == len(np.unique(joined))
    for idx in parts:
        assert set(np.unique(ds.y[idx])) == set(np.unique(ds.y))  # every class in every split
    if name == "breast_cancer":
        overall = ds.y.mean()
        for idx in parts:
            assert abs(ds.y[idx].mean() - overall) < 0.02


def test_split_deterministic_and_hash_tracks_inputs() -> None:
    ds = load_dataset("breast_cancer")
    a, b = prepare_data(ds, SplitSpec(seed=1)), prepare_data(ds, SplitSpec(seed=1))
    assert a.split_hash == b.split_hash and np.array_equal(a.y_val, b.y_val)
    assert prepare_data(ds, SplitSpec(seed=2)).split_hash != a.split_hash
    assert prepare_data(ds, SplitSpec(train=0.7, val=0.15, test=0.15, seed=1)).split_hash != a.split_hash
    assert len(a.split_hash) == 12


def test_too_small_class_is_a_clear_error() -> None:
    y = np.array([0, 0, 0, 1, 1])
    with pytest.raises(DataError, match="class 1 has only 2 row"):
        stratified_indices(y, (0.6, 0.2, 0.2), 0)


def test_split_fractions_validated() -> None:
    with pytest.raises(ConfigError, match="train \\+ val \\+ test must be 1"):
        dataset_conf(
            "sign",
            raw={"name": "sign", "dataset": {"loader": "sign"}, "split": {"train": 0.5, "val": 0.2, "test": 0.2}},
        )


def test_scaler_fitted_on_train_only(breast_cancer_data) -> None:
    data = breast_cancer_data
    assert np.allclose(data.X_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(data.X_train.std(axis=0), 1, atol=1e-3)
    # validation/test were transformed with train statistics, so their means are not exactly 0
    assert np.abs(data.X_val.mean(axis=0)).max() > 1e-3
    raw = load_dataset("breast_cancer")
    parts = stratified_indices(raw.y, (0.6, 0.2, 0.2), 0)
    refit = Standardizer.fit(raw.X[parts[0]])
    assert np.allclose(refit.mean, data.scaler.mean) and np.allclose(refit.scale, data.scaler.scale)
