"""Metrics against scikit-learn; threshold optimum against brute force; calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tests.cases import binary_case
from tunefleet.calibration import probabilities
from tunefleet.metrics import average_precision, binary_metrics, confusion_matrix, multiclass_metrics, roc_auc


@pytest.mark.parametrize("ties", [False, True])
def test_binary_metrics_match_sklearn(ties: bool) -> None:
    y, p = binary_case(0, ties=ties)
    m = binary_metrics(y, p, 0.4)
    pred = (p >= 0.4).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))


def test_multiclass_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 2 * np.eye(4)[y]
    prob = probabilities(logits)
    m = multiclass_metrics(y, prob)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, prob.argmax(1)))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, prob.argmax(1), average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, prob))
    assert np.array_equal(confusion_matrix(y, prob.argmax(1), 4), skm.confusion_matrix(y, prob.argmax(1)))


def test_auc_edge_cases() -> None:
    assert np.isnan(roc_auc(np.ones(4, int), np.linspace(0, 1, 4)))
    assert np.isnan(roc_auc(np.zeros(0, int), np.zeros(0))) and np.isnan(
        average_precision(np.zeros(0, int), np.zeros(0))
    )
    assert average_precision(np.array([0, 1]), np.array([0.2, 0.9])) == 1.0
