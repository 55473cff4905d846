"""The per-search baseline: scikit-learn LogisticRegression on the same split.

Same standardized features, same validation-chosen threshold objective, tested once on
the same test rows, so the tuned model's lift over it is an honest comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from search.spec import ExperimentConfig
from tunefleet.metrics import binary_metrics, multiclass_metrics, prefixed
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
    """Validation and test metrics of a LogisticRegression, and its test probabilities."""
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    model = LogisticRegression(max_iter=int(BASELINE_PARAMS["max_iter"]), random_state=exp.search.seed)
    model.fit(data.X_train, data.y_train)
    out: dict[str, float] = {}
    val_proba = model.predict_proba(data.X_val)
    test_proba = model.predict_proba(data.X_test)
    if data.task == "binary":
        threshold = choose_threshold(data.y_val, val_proba[:, 1], exp.threshold)
        out.update(prefixed(binary_metrics(data.y_val, val_proba[:, 1], threshold), "val"))
        out.update(prefixed(binary_metrics(data.y_test, test_proba[:, 1], threshold), "test"))
        out["threshold"] = threshold
    else:
        out.update(prefixed(multiclass_metrics(data.y_val, val_proba), "val"))
        out.update(prefixed(multiclass_metrics(data.y_test, test_proba), "test"))
    out["fit_seconds"] = time.perf_counter() - started
    metrics = {k: float(v) for k, v in out.items() if not np.isnan(v)}
    return Baseline(metrics, test_proba, metrics.get("threshold"))
