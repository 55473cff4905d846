"""train_one on every seed dataset, the model, losses, determinism and the bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tunefleet import ModelBundle, train_one
from tunefleet.bundle import mlp_logits
from tunefleet.catalog import dataset_conf
from tunefleet.datasets import load_dataset
from tunefleet.errors import ConfigError, DataError
from tunefleet.evaluation import evaluate, raw_features
from tunefleet.model import MLP
from tunefleet.seeds import run_seed
from tunefleet.splits import SplitSpec, prepare_data
from tunefleet.train_config import TrainConfig


def test_mlp_shapes_and_logistic_regression() -> None:
    lr = MLP(5, (), 1)
    assert len([m for m in lr.modules() if isinstance(m, torch.nn.Linear)]) == 1
    assert lr(torch.zeros(3, 5)).shape == (3,)
    deep = MLP(30, (32, 64), 1)
    assert [m.out_features for m in deep.modules() if isinstance(m, torch.nn.Linear)] == [32, 64, 1]
    assert MLP(784, (), 10)(torch.zeros(2, 784)).shape == (2, 10)


def test_outputs_are_logits_not_probabilities() -> None:
    net = MLP(2, (), 1)
    with torch.no_grad():
        net.net[0].weight.fill_(10.0)
    out = net(torch.tensor([[5.0, 5.0], [-5.0, -5.0]]))
    assert out.max() > 1 and out.min() < 0  # unbounded: no sigmoid inside the model


@pytest.mark.parametrize("name", ["student_hours", "sign", "threshold_1d"])
def test_toy_seed_tutorials_fit_their_training_rows(name: str) -> None:
    row = run_seed(name)
    assert row["train_accuracy"] == 1.0
    if name == "sign":
        assert row["test_accuracy"] == 1.0


def test_breast_cancer_seed_mlp_reaches_95_percent() -> None:
    row = run_seed("breast_cancer")
    assert row["test_accuracy"] >= 0.95
    assert row["test_roc_auc"] >= 0.98


def test_mnist_logistic_regression_within_5_epochs(mnist_root) -> None:
    row = run_seed("mnist", root=str(mnist_root), download=False)
    assert row["epochs_run"] <= 5
    assert row["test_accuracy"] >= 0.85


def test_train_one_contract(breast_cancer_data) -> None:
    conf = dataset_conf("breast_cancer")
    seen: list[int] = []
    result = train_one(
        conf.seed_train_config(epochs=8, hidden_widths=[16]), breast_cancer_data, report=lambda e, m: seen.append(e)
    )
    assert seen == list(range(1, 9))
    assert len(result.history) == 8 and {"train_loss", "val_loss", "val_roc_auc"} <= set(result.history[0])
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.best_epoch == best["epoch"]  # the best epoch is kept, not the last
    assert result.val_probabilities.shape == (len(breast_cancer_data.y_val),)
    assert 0 < result.metrics["threshold"] < 1
    assert set(result.metrics) >= {"val_f1", "val_roc_auc", "val_brier", "val_log_loss", "val_pr_auc"}


def test_train_one_is_deterministic(breast_cancer_data) -> None:
    cfg = dataset_conf("breast_cancer").seed_train_config(epochs=3, hidden_widths=[8], torch_threads=1, seed=5)
    a, b = train_one(cfg, breast_cancer_data), train_one(cfg, breast_cancer_data)
    assert a.history == b.history
    for k in a.bundle.state_dict:
        assert np.array_equal(a.bundle.state_dict[k], b.bundle.state_dict[k])


def test_report_hook_can_stop_a_trial(breast_cancer_data) -> None:
    class StopTrialError(Exception):
        pass

    def hook(epoch: int, _metrics: dict) -> None:
        if epoch == 2:
            raise StopTrialError

    with pytest.raises(StopTrialError):
        train_one(dataset_conf("breast_cancer").seed_train_config(epochs=10), breast_cancer_data, report=hook)


def test_patience_stops_early(breast_cancer_data) -> None:
    cfg = dataset_conf("breast_cancer").seed_train_config(epochs=200, lr=0.05, patience=3)
    result = train_one(cfg, breast_cancer_data)
    # it stops exactly `patience` epochs after the last improvement of validation loss
    assert result.metrics["epochs_run"] == result.best_epoch + 3 < 200
    losses = [row["val_loss"] for row in result.history]
    assert min(losses[result.best_epoch :]) >= losses[result.best_epoch - 1] - 1e-9


def test_bad_train_config_names_the_key() -> None:
    conf = dataset_conf("breast_cancer")
    with pytest.raises(ConfigError, match="lr: Input should be greater than 0"):
        conf.train_config({"lr": -1})
    with pytest.raises(ConfigError, match="learning_rate: unknown key"):
        conf.train_config({"learning_rate": 0.1})


def test_multiclass_uses_cross_entropy_on_k_logits(tmp_path) -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [4, 0], [0, 4]])
    y = np.repeat([0, 1, 2], 40)
    frame = pd.DataFrame(centers[y] + rng.normal(0, 0.5, (120, 2)), columns=["u", "v"])
    frame["species"] = np.array(["a", "b", "c"])[y]
    path = tmp_path / "three.csv"
    frame.to_csv(path, index=False)
    data = prepare_data(load_dataset("csv", {"path": str(path), "target": "species"}), SplitSpec())
    result = train_one(TrainConfig(epochs=30, lr=0.05), data)
    assert result.bundle.network.n_outputs == 3 and result.metrics["val_accuracy"] > 0.9
    assert result.bundle.threshold is None
    assert set(result.bundle.predict(frame[["u", "v"]].head(10))) <= {"a", "b", "c"}


# ---- bundle ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(breast_cancer_data):
    return train_one(
        dataset_conf("breast_cancer").seed_train_config(epochs=5, hidden_widths=[16, 8]), breast_cancer_data
    )


@pytest.mark.parametrize(("widths", "n_outputs"), [((), 1), ((16,), 1), ((32, 8), 1), ((), 3), ((16, 8), 4)])
def test_bundle_predicts_in_numpy_as_the_torch_network_would(widths, n_outputs) -> None:
    """The bundle's numpy forward pass (no torch import to predict) equals the MLP it was trained as."""
    torch.manual_seed(0)
    net = MLP(6, widths, n_outputs)
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = mlp_logits(state, x)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_bundle_round_trip_is_exact(tmp_path, trained, breast_cancer_data) -> None:
    bundle = trained.bundle
    path = bundle.save(tmp_path / "b")
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json", "weights.npz"]
    loaded = ModelBundle.load(path)
    X = raw_features(breast_cancer_data, "test")
    assert np.array_equal(bundle.predict_proba(X), loaded.predict_proba(X))
    assert np.array_equal(bundle.predict(X), loaded.predict(X))
    assert loaded.threshold == bundle.threshold and loaded.class_labels == ("malignant", "benign")
    assert loaded.split_hash == breast_cancer_data.split_hash


def test_bundle_predicts_from_raw_frames_and_checks_columns(trained, breast_cancer_data) -> None:
    bundle = trained.bundle
    X = raw_features(breast_cancer_data, "test")
    frame = pd.DataFrame(X, columns=list(bundle.feature_names))
    shuffled = frame[list(reversed(frame.columns))]  # columns matched by name, not position
    assert np.allclose(bundle.predict_proba(shuffled), bundle.predict_proba(X))
    proba = bundle.predict_proba(frame)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert np.array_equal(bundle.predict(X) == "benign", proba[:, 1] >= bundle.threshold)
    with pytest.raises(DataError, match="missing 1 feature column.*'mean radius'"):
        bundle.predict(frame.drop(columns=["mean radius"]))
    with pytest.raises(DataError, match="input has 3 feature.*expects 30"):
        bundle.predict(np.zeros((2, 3)))
    with pytest.raises(DataError, match="missing or infinite"):
        bundle.predict(np.full((1, 30), np.nan))


def test_test_metrics_via_bundle_match_training_view(trained, breast_cancer_data) -> None:
    m = evaluate(trained.bundle, breast_cancer_data, "val")
    assert m["val_f1"] == pytest.approx(trained.metrics["val_f1"], abs=1e-6)
