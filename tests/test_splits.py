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


def test_which_columns_are_flagged_for_empty_cells_is_decided_on_the_training_rows() -> None:
    """A column whose only empty cell is a test row: at 23b723d it was flagged (an indicator input,
    decided from every row of the file, test rows included). Now the training rows decide: no
    flag, the test row filled with the training median. A user's empty cell there is accepted
    and filled the same way (the file showed the column can be empty: at 6945e7f it was refused,
    and a user's held-out rows of the penguins table failed to predict); a column empty in no
    row of the file refuses one. A column empty in training rows is flagged and accepts one."""
    from tunefleet.datasets import _from_arrays
    from tunefleet.evaluation import raw_features
    from tunefleet.train import train_one
    from tunefleet.train_config import TrainConfig

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    probe = prepare_data(_from_arrays("t", X, y, ["a", "b", "c"]), SplitSpec(cv_folds=1))
    unscaled = probe.X_test * probe.scaler.scale + probe.scaler.mean
    test_row = int(np.flatnonzero(np.isclose(X[:, 1], unscaled[0, 1]))[0])
    train_row = int(
        np.flatnonzero(np.isclose(X[:, 2], probe.X_train[0, 2] * probe.scaler.scale[2] + probe.scaler.mean[2]))[0]
    )
    X[test_row, 1], X[train_row, 2] = np.nan, np.nan
    data = prepare_data(_from_arrays("t", X, y, ["a", "b", "c"]), SplitSpec(cv_folds=1))
    assert [c.empty for c in data.encoding.columns] == [False, False, True] and data.encoding.width == 4
    assert [c.accepts_empty for c in data.encoding.columns] == [False, True, True]
    filled = raw_features(data, "test").loc[0, "b"]  # a frame: the encoding is not plain numbers
    b_train = data.X_train[:, 1] * data.scaler.scale[1] + data.scaler.mean[1]
    assert filled == pytest.approx(np.median(b_train), rel=1e-5)  # the training median, unflagged
    bundle = train_one(TrainConfig(epochs=1), data).bundle
    assert np.isfinite(bundle.predict_proba(raw_features(data, "test"))).all()  # every file row is scored
    user = np.array([[0.1, np.nan, 0.3]])
    filled_by_hand = np.array([[0.1, float(np.median(b_train)), 0.3]])
    assert np.allclose(bundle.predict_proba(user), bundle.predict_proba(filled_by_hand), atol=1e-6)
    with pytest.raises(DataError, match="'a'"):
        bundle.predict_proba(np.array([[np.nan, 0.2, 0.3]]))
    assert np.isfinite(bundle.predict_proba(np.array([[0.1, 0.2, np.nan]]))).all()


def test_auto_folds_follow_the_pool_size_and_the_smallest_class() -> None:
    """cv_folds: auto is 5 folds up to AUTO_CV_ROWS train + validation rows, no more folds than the
    smallest class has rows there (each fold holds every class), and the validation split beyond."""
    from tunefleet.splits import AUTO_CV_ROWS

    auto = SplitSpec()
    assert AUTO_CV_ROWS == 10_000  # the quality suite's measurement (README): a change is a decision
    assert auto.folds_for(456, 170) == 5 and auto.folds_for(AUTO_CV_ROWS, 2000) == 5
    assert auto.folds_for(AUTO_CV_ROWS + 1, 2000) == 1
    assert auto.folds_for(120, 3) == 3 and auto.folds_for(120, 1) == 1
    assert SplitSpec(cv_folds=1).folds_for(100, 50) == 1 and SplitSpec(cv_folds=7).folds_for(50_000, 9) == 7
