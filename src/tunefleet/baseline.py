"""The logistic-regression baseline, under the search's own protocol: a candidate like any trial.

scikit-learn's ``LogisticRegression`` on the same encoded, standardized rows: fitted on the
training rows and predicting the validation rows, or under cross-validation fitted on each
fold's training rows and predicting its held-out rows (out-of-fold), each fold read through
its own encoding and scaler. It is calibrated (a temperature) and thresholded as trials
are, on those rows; and it is a 0-layer network (``coef_`` and ``intercept_`` are exactly
its weights), so when it is the search's best it is registered as any bundle is: the same
pyfunc, signature and REST behaviour.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tunefleet.bundle import Network, bundle_of
from tunefleet.calibration import fit_temperature, probabilities
from tunefleet.candidates import Candidate, scored
from tunefleet.splits import PreparedData
from tunefleet.thresholds import ThresholdConfig

PARAMS = {"model": "LogisticRegression", "max_iter": "2000"}


def _network(view: PreparedData, seed: int) -> tuple[Network, np.ndarray]:
    """One fit, as a 0-layer network, and its logits on the view's validation rows."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=int(PARAMS["max_iter"]), random_state=seed).fit(view.X_train, view.y_train)
    state = {"net.0.weight": model.coef_.astype(np.float32), "net.0.bias": model.intercept_.astype(np.float32)}
    network = Network(
        hidden_widths=(),
        state_dict=state,
        scaler_mean=view.scaler.mean,
        scaler_scale=view.scaler.scale,
        encoding=None if view.encoding.plain else view.encoding,
    )
    logits = model.decision_function(view.X_val)
    return network, np.asarray(logits, dtype=np.float64)


def logistic_regression(data: PreparedData, threshold: ThresholdConfig, seed: int = 0) -> Candidate:
    """The baseline as a candidate: its (fold) models, calibrated and thresholded on the validation rows."""
    views = data.folds or (data,)
    fits = [_network(view, seed) for view in views]
    logits = np.concatenate([lg for _, lg in fits])
    y = np.concatenate([view.y_val for view in views])
    temperature = fit_temperature(logits, y)
    members = tuple(replace(n, temperature=temperature, weight=1 / len(fits)) for n, _ in fits)
    return scored(
        "baseline", "baseline", bundle_of(data, members, None), probabilities(logits, temperature), data, threshold
    )
