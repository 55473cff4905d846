"""Decision thresholds for binary classifiers, chosen on validation (or out-of-fold) probabilities.

``threshold_candidates`` scores every distinct decision rule (one sort plus cumulative
counts: O(n log n)), not a coarse grid. ``choose_threshold`` does not take the exact
optimum over a few hundred rows, which a handful of them can move far (on breast_cancer's
114 validation rows the F1-optimal threshold cost logistic regression itself 3.5 test
accuracy points). For a calibrated model, the costs alone say where the optimum should
be: 0.5 for accuracy, ``fp_cost / (fp_cost + fn_cost)`` for a cost, the positive rate for
balanced accuracy. The threshold leaves that anchor only when the best rule beats it by
more than one standard error of their per-row differences (rows that the two rules
decide alike do not count), and then it goes to the middle of the best rules' plateau.
F1 has no such anchor: the middle of its plateau.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tunefleet.config import StrictModel
from tunefleet.metrics import Ranked, ranked_counts

Objective = Literal["accuracy", "f1", "balanced_accuracy", "cost", "fixed"]


class ThresholdConfig(StrictModel):
    """How a binary model's decision threshold is set.

    ``mode: tune`` picks the threshold on validation by ``objective`` inside each trial;
    ``mode: search`` makes ``threshold`` a hyperparameter the search layer samples.
    """

    mode: Literal["tune", "search"] = "tune"
    objective: Objective = "accuracy"  # equal costs: what the model's accuracy is measured at
    value: float = Field(0.5, gt=0, lt=1)
    fp_cost: float = Field(1.0, ge=0)
    fn_cost: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _costs_not_both_zero(self) -> ThresholdConfig:
        if self.objective == "cost" and self.fp_cost == 0 and self.fn_cost == 0:
            raise ValueError("fp_cost and fn_cost cannot both be 0 for objective 'cost'")
        return self


def _objective_values(tp: np.ndarray, fp: np.ndarray, n_pos: int, n_neg: int, cfg: ThresholdConfig) -> np.ndarray:
    fn = n_pos - tp
    tn = n_neg - fp
    if cfg.objective == "accuracy":
        return (tp + tn) / max(1, n_pos + n_neg)
    if cfg.objective == "f1":
        denom = 2 * tp + fp + fn
        return np.divide(2.0 * tp, denom, out=np.zeros(len(tp)), where=denom > 0)
    if cfg.objective == "balanced_accuracy":
        tpr = tp / n_pos if n_pos else np.zeros(len(tp))
        tnr = tn / n_neg if n_neg else np.zeros(len(tp))
        return (tpr + tnr) / 2.0
    # cost: maximise the negative expected cost
    return -(cfg.fp_cost * fp + cfg.fn_cost * fn).astype(np.float64)


def threshold_candidates(
    y: np.ndarray, prob: np.ndarray, cfg: ThresholdConfig, ranked: Ranked | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct decision rule on the validation set and its objective value.

    Rule k predicts positive for ``prob >= s_k`` (s sorted descending, distinct); a
    final rule predicts nothing positive. Returns (thresholds, objective values), where
    each threshold sits midway between neighbouring distinct scores for margin.
    """
    y = np.asarray(y, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    distinct, tp, fp = ranked if ranked is not None else ranked_counts(y, prob)
    n_pos, n_neg = int(tp[-1]), int(fp[-1])
    tp, fp = np.append(tp, 0), np.append(fp, 0)  # the last rule: nothing positive
    lower = np.append(distinct[1:], 0.0)
    thresholds = np.append((distinct + lower) / 2.0, (1.0 + distinct[0]) / 2.0)
    return thresholds, _objective_values(tp, fp, n_pos, n_neg, cfg)


def anchor(cfg: ThresholdConfig, y: np.ndarray) -> float | None:
    """Where a calibrated model's optimum lies for ``cfg``'s objective (None: F1, which has none)."""
    if cfg.objective == "accuracy":
        return 0.5
    if cfg.objective == "cost":
        return cfg.fp_cost / (cfg.fp_cost + cfg.fn_cost)
    if cfg.objective == "balanced_accuracy":
        return float(np.mean(y)) if len(y) else 0.5
    return None


def _row_gains(y: np.ndarray, prob: np.ndarray, t: float, ref: float, cfg: ThresholdConfig) -> np.ndarray:
    """Each row's change of the (additive) objective from deciding at ``ref`` to deciding at ``t``."""
    right = (prob >= t) == (y == 1)
    right_ref = (prob >= ref) == (y == 1)
    if cfg.objective == "accuracy":
        weight = np.full(len(y), 1.0 / max(1, len(y)))
    elif cfg.objective == "balanced_accuracy":
        n_pos, n_neg = max(1, int(np.sum(y == 1))), max(1, int(np.sum(y == 0)))
        weight = np.where(y == 1, 0.5 / n_pos, 0.5 / n_neg)
    else:  # cost: an error costs its kind's cost
        weight = np.where(y == 1, cfg.fn_cost, cfg.fp_cost).astype(np.float64)
    return (right.astype(np.float64) - right_ref) * weight


def choose_threshold(y: np.ndarray, prob: np.ndarray, cfg: ThresholdConfig, ranked: Ranked | None = None) -> float:
    """The threshold for ``cfg`` on these rows: the objective's anchor unless the data clearly beat it
    (see the module docstring); ``objective: fixed`` and ``mode: search`` (where the search layer
    sampled ``value``) return ``cfg.value`` unchanged."""
    if cfg.mode == "search" or cfg.objective == "fixed":
        return float(cfg.value)
    y, prob = np.asarray(y, dtype=np.int64), np.asarray(prob, dtype=np.float64)
    thresholds, values = threshold_candidates(y, prob, cfg, ranked)
    ref = anchor(cfg, y)
    best = _plateau_middle(thresholds, values, 0.5 if ref is None else ref)
    if ref is None:
        return best
    gains = _row_gains(y, prob, best, ref, cfg)
    return best if gains.sum() > math.sqrt(float(np.sum(gains**2))) else ref


def _plateau_middle(thresholds: np.ndarray, values: np.ndarray, near: float) -> float:
    """The middle of the run of optimal rules (consecutive, thresholds descending) nearest ``near``."""
    optimal = values >= values.max() - 1e-12
    runs, start = [], None
    for i, good in enumerate([*optimal, False]):
        if good and start is None:
            start = i
        elif not good and start is not None:
            runs.append((start, i - 1))
            start = None
    # a run of rules i..j is every threshold from just above rule j's score to rule i's: its middle
    mids = [(thresholds[i] + thresholds[j]) / 2.0 for i, j in runs]
    return float(min(mids, key=lambda m: abs(m - near)))
