"""Cross-validated trials: folds, per-fold scalers, fold-mean reports, out-of-fold threshold, the fold models as one model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunefleet.calibration import fit_temperature, probabilities
from tunefleet.cv import train_cv, train_trial
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
        assert not np.allclose(fold.scaler.mean, pool.mean(axis=0), atol=1e-3)  # not a scaler of all the rows


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


def test_a_cv_trials_model_averages_its_fold_models_each_through_its_own_scaler(cancer) -> None:
    """Its bundle predicts the mean of its K fold networks' calibrated probabilities, each network
    reading the raw rows through its own fold's scaler; its out-of-fold predictions are each fold
    model's on its own held-out rows, at the out-of-fold temperature."""
    from tunefleet.calibration import probabilities
    from tunefleet.evaluation import raw_features

    data = prepare_data(cancer, SplitSpec(cv_folds=3))
    result = train_cv(CFG, data)
    members = result.bundle.members
    assert len(members) == 3 and all(m.weight == pytest.approx(1 / 3) for m in members)
    temperature = result.metrics["temperature"]
    raw = raw_features(data, "test")
    expected = np.mean(
        [
            probabilities(
                fold.module(2)(torch.from_numpy(((raw - fold.scaler_mean) / fold.scaler_scale).astype(np.float32)))
                .detach()
                .numpy(),
                temperature,
            )
            for fold in members
        ],
        axis=0,
    )
    np.testing.assert_allclose(result.bundle.predict_proba(raw)[:, 1], expected, atol=1e-5)
    for fold, view in zip(members, data.folds, strict=True):
        np.testing.assert_array_equal(fold.scaler_mean, view.scaler.mean)
    oof = np.concatenate(
        [
            probabilities(m.logits(view.X_val * view.scaler.scale + view.scaler.mean), temperature)
            for m, view in zip(members, data.folds, strict=True)
        ]
    )
    np.testing.assert_allclose(result.val_probabilities, oof, atol=1e-5)


def test_the_baseline_follows_the_same_protocol_under_cv() -> None:
    """Fitted on each fold's training rows, judged out of fold (temperature and threshold there), and
    its model is the mean of its fold fits: held to scikit-learn's own fold models."""
    from sklearn.linear_model import LogisticRegression

    from tunefleet.baseline import logistic_regression
    from tunefleet.calibration import fit_temperature, probabilities
    from tunefleet.evaluation import raw_features
    from tunefleet.search import load_experiment

    exp = load_experiment("breast_cancer", overrides=["split.cv_folds=4"])
    data = exp.load()
    baseline = logistic_regression(data, exp.threshold, exp.search.seed)
    fits = [
        LogisticRegression(max_iter=2000, random_state=exp.search.seed).fit(f.X_train, f.y_train) for f in data.folds
    ]
    logits = np.concatenate([m.decision_function(f.X_val) for m, f in zip(fits, data.folds, strict=True)])
    y = np.concatenate([f.y_val for f in data.folds])
    temperature = fit_temperature(logits, y)
    np.testing.assert_allclose(baseline.val_probabilities, probabilities(logits, temperature), atol=1e-6)
    assert baseline.bundle.threshold == pytest.approx(
        choose_threshold(y, probabilities(logits, temperature), exp.threshold)
    )
    raw = raw_features(data, "test")
    test_logits = [m.decision_function(f.scaler.transform(raw)) for m, f in zip(fits, data.folds, strict=True)]
    expected = np.mean([probabilities(lg, temperature) for lg in test_logits], axis=0)
    np.testing.assert_allclose(baseline.bundle.predict_proba(raw)[:, 1], expected, atol=1e-5)
    assert len(y) == sum(len(f.y_train) for f in data.folds) // 3  # every train + validation row scored once
