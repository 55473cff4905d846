"""train_one on every seed dataset, the model, losses, determinism and the bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tunefleet import train_one
from tunefleet.catalog import dataset_conf
from tunefleet.datasets import load_dataset
from tunefleet.errors import ConfigError
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
    for k in a.bundle.only.state_dict:
        assert np.array_equal(a.bundle.only.state_dict[k], b.bundle.only.state_dict[k])


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
    assert result.bundle.only.module(result.bundle.n_classes).n_outputs == 3 and result.metrics["val_accuracy"] > 0.9
    assert result.bundle.threshold is None
    assert set(result.bundle.predict(frame[["u", "v"]].head(10))) <= {"a", "b", "c"}


# ---- bundle ------------------------------------------------------------------------
