"""The portable bundle: numpy prediction equal to the torch network, an exact round trip, raw frames in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tunefleet import ModelBundle, train_one
from tunefleet.bundle import mlp_logits
from tunefleet.catalog import dataset_conf
from tunefleet.errors import DataError
from tunefleet.evaluation import evaluate, raw_features
from tunefleet.model import MLP


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
