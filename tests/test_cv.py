"""Cross-validated trials: folds, per-fold scalers, fold-mean reports, out-of-fold threshold, refit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunefleet.calibration import fit_temperature, probabilities
from tunefleet.cv import refit, train_cv, train_trial
from tunefleet.datasets import load_dataset
from tunefleet.errors import DataError
from tunefleet.splits import SplitSpec, Standardizer, prepare_data, stratified_folds
from tunefleet.thresholds import choose_threshold
from tunefleet.train import Run, train_one
from tunefleet.train_config import TrainConfig

CFG = TrainConfig(lr=0.01, batch_size=32, hidden_widths=(8,), epochs=4, torch_threads=1)


@pytest.fixture(scope="module")
def cancer():
    return load_dataset("breast_cancer")


def test_stratified_folds_partition_every_row_with_every_class_in_each_fold() -> None:
    y = np.array([0] * 23 + [1] * 9 + [2] * 5)
    folds = stratified_folds(y, 5, seed=3, class_labels=("a", "b", "c"))
    together = np.sort(np.concatenate(folds))
    assert np.array_equal(together, np.arange(len(y)))  # every row held out exactly once
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert all(set(y[f]) == {0, 1, 2} for f in folds)
    assert [f.tolist() for f in folds] == [f.tolist() for f in stratified_folds(y, 5, 3, ("a", "b", "c"))]
    with pytest.raises(DataError, match=r"class 'c' has only 5 row\(s\) in train \+ validation; --cv 6 needs"):
        stratified_folds(y, 6, seed=3, class_labels=("a", "b", "c"))


def test_folds_keep_the_test_rows_and_fit_each_scaler_on_its_own_training_rows(cancer) -> None:
    plain = prepare_data(cancer, SplitSpec())
    cv = prepare_data(cancer, SplitSpec(cv_folds=4))
    assert np.array_equal(cv.X_test, plain.X_test) and np.array_equal(cv.y_test, plain.y_test)
    assert cv.split_hash != plain.split_hash  # CV validation metrics are not holdout ones
    pool = np.concatenate([plain.X_train, plain.X_val]) * plain.scaler.scale + plain.scaler.mean  # raw rows
    assert len(cv.folds) == 4 and sum(len(f.y_val) for f in cv.folds) == len(pool)
    for fold in cv.folds:
        raw_train = fold.X_train * fold.scaler.scale + fold.scaler.mean
        np.testing.assert_allclose(fold.scaler.mean, Standardizer.fit(raw_train).mean, atol=1e-4)
        assert len(fold.y_train) + len(fold.y_val) == len(pool)
        assert not np.allclose(fold.scaler.mean, cv.refit.scaler.mean)  # not the pooled scaler
    assert cv.refit is not None and len(cv.refit.y_train) == len(pool)
    np.testing.assert_allclose(cv.refit.scaler.mean, pool.mean(axis=0), rtol=1e-4, atol=1e-3)


def test_each_fold_model_is_train_one_on_its_fold_and_the_trial_reports_their_mean(cancer) -> None:
    data = prepare_data(cancer, SplitSpec(cv_folds=3))
    seen: list[tuple[int, dict[str, float]]] = []
    result = train_cv(CFG, data, report=lambda epoch, row: seen.append((epoch, row)))
    alone = [train_one(CFG, fold) for fold in data.folds]  # the reference path, fold by fold
    for epoch in range(CFG.epochs):
        for key in ("val_loss", "val_roc_auc", "train_loss"):
            expected = np.mean([r.history[epoch][key] for r in alone])
            assert result.history[epoch][key] == pytest.approx(expected, abs=1e-6)
    assert [e for e, _ in seen] == [1, 2, 3, 4] and seen[-1][1] == result.history[-1]
    assert result.metrics["best_epoch"] == pytest.approx(np.mean([r.best_epoch for r in alone]))
    assert result.metrics["cv_folds"] == 3 and "val_roc_auc_std" in result.metrics
    assert train_trial(CFG, data).metrics == pytest.approx(result.metrics)  # trials under CV train folds


def test_temperature_and_threshold_come_from_the_out_of_fold_predictions(cancer) -> None:
    data = prepare_data(cancer, SplitSpec(cv_folds=3))
    result = train_cv(CFG, data)
    logits, ys = [], []
    for fold in data.folds:
        run = Run(CFG, fold)
        for epoch in range(1, CFG.epochs + 1):
            run.epoch(epoch)
        model = run.kept_model().eval()
        with torch.no_grad():
            logits.append(model(torch.from_numpy(fold.X_val)).numpy())
        ys.append(fold.y_val)
    oof, y = np.concatenate(logits), np.concatenate(ys)
    temperature = fit_temperature(oof, y)
    threshold = choose_threshold(y, probabilities(oof, temperature), CFG.threshold)
    assert result.metrics["temperature"] == pytest.approx(temperature, rel=1e-5)
    assert result.metrics["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert result.bundle.threshold == result.metrics["threshold"]


def test_a_pruner_stops_the_whole_trial_on_the_fold_mean(cancer) -> None:
    data = prepare_data(cancer, SplitSpec(cv_folds=3))

    class PrunedError(Exception):
        pass

    def prune_at_two(epoch: int, row: dict[str, float]) -> None:
        if epoch == 2:
            raise PrunedError

    with pytest.raises(PrunedError):
        train_cv(CFG, data, report=prune_at_two)


def test_refit_trains_on_all_of_train_and_validation_for_the_mean_best_epoch(cancer) -> None:
    data = prepare_data(cancer, SplitSpec(cv_folds=3))
    metrics = {"best_epoch": 2.6, "temperature": 1.3, "threshold": 0.42}
    bundle = refit(CFG, data, metrics)
    assert bundle.only.temperature == 1.3 and bundle.threshold == 0.42
    np.testing.assert_array_equal(bundle.only.scaler_mean, data.refit.scaler.mean)
    reference = Run(CFG.model_copy(update={"epochs": 3, "keep": "last", "calibrate": False}), data.refit)
    for epoch in (1, 2, 3):  # round(2.6) epochs, the last weights kept
        reference.epoch(epoch)
    expected = reference.result().bundle.only.state_dict
    assert all(np.allclose(bundle.only.state_dict[k], expected[k]) for k in expected)
    with pytest.raises(ValueError, match="cv_folds > 1"):
        refit(CFG, prepare_data(cancer, SplitSpec()), metrics)


def test_the_baseline_follows_the_same_protocol_under_cv() -> None:
    """Out-of-fold validation metrics and threshold, then one fit on train + validation, tested once."""
    from sklearn.linear_model import LogisticRegression

    from tunefleet.pipeline.baseline import logistic_baseline
    from tunefleet.search import load_experiment

    exp = load_experiment("breast_cancer", overrides=["split.cv_folds=4"])
    data = exp.load()
    baseline = logistic_baseline(exp, data)
    pooled = LogisticRegression(max_iter=2000, random_state=exp.search.seed).fit(data.refit.X_train, data.refit.y_train)
    np.testing.assert_allclose(baseline.test_proba, pooled.predict_proba(data.refit.X_test))
    oof = np.concatenate(
        [
            LogisticRegression(max_iter=2000, random_state=exp.search.seed)
            .fit(f.X_train, f.y_train)
            .predict_proba(f.X_val)[:, 1]
            for f in data.folds
        ]
    )
    y = np.concatenate([f.y_val for f in data.folds])
    assert baseline.threshold == pytest.approx(choose_threshold(y, oof, exp.threshold))
    assert len(y) == len(data.refit.y_train)  # every train + validation row scored once, out of fold
