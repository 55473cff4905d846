"""The per-search baseline: scikit-learn LogisticRegression on the same split.

Same standardized features, same validation-chosen threshold objective, tested once on
the same test rows, so the tuned model's lift over it is an honest comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunefleet.metrics import binary_metrics, multiclass_metrics, prefixed
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.splits import PreparedData
from tunefleet.thresholds import choose_threshold

BASELINE_PARAMS = {"model": "LogisticRegression", "max_iter": "2000"}


@dataclass(frozen=True)
class Baseline:
    """The baseline's metrics (``val_*``, ``test_*``) and what its paired lift interval needs."""

    metrics: dict[str, float]
    test_proba: np.ndarray
    threshold: float | None


def logistic_baseline(exp: ExperimentConfig, data: PreparedData) -> Baseline:
    """Validation and test metrics of a LogisticRegression, and its test probabilities.

    Under cross-validation it follows the tuned model's protocol: validation metrics and
    the threshold from out-of-fold predictions, then one fit on all of train + validation,
    tested once. Otherwise: fit on train, threshold on validation.
    """
    started = time.perf_counter()
    if data.folds and data.refit is not None:
        val_y = np.concatenate([fold.y_val for fold in data.folds])
        val_proba = np.concatenate([_fit(exp, fold).predict_proba(fold.X_val) for fold in data.folds])
        test_proba = _fit(exp, data.refit).predict_proba(data.refit.X_test)
    else:
        model = _fit(exp, data)
        val_y, val_proba, test_proba = data.y_val, model.predict_proba(data.X_val), model.predict_proba(data.X_test)
    out: dict[str, float] = {}
    if data.task == "binary":
        threshold = choose_threshold(val_y, val_proba[:, 1], exp.threshold)
        out.update(prefixed(binary_metrics(val_y, val_proba[:, 1], threshold), "val"))
        out.update(prefixed(binary_metrics(data.y_test, test_proba[:, 1], threshold), "test"))
        out["threshold"] = threshold
    else:
        out.update(prefixed(multiclass_metrics(val_y, val_proba), "val"))
        out.update(prefixed(multiclass_metrics(data.y_test, test_proba), "test"))
    out["fit_seconds"] = time.perf_counter() - started
    metrics = {k: float(v) for k, v in out.items() if not np.isnan(v)}
    return Baseline(metrics, test_proba, metrics.get("threshold"))


def _fit(exp: ExperimentConfig, data: PreparedData) -> Any:
    """A LogisticRegression fitted on ``data``'s (standardized) training rows."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=int(BASELINE_PARAMS["max_iter"]), random_state=exp.search.seed)
    return model.fit(data.X_train, data.y_train)
