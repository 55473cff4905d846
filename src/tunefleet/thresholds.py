"""Decision thresholds for binary classifiers, chosen on validation probabilities.

``choose_threshold`` finds the exact optimum of the objective over every distinct
validation score (one sort plus cumulative counts: O(n log n)), not a coarse grid.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tunefleet.config import StrictModel
from tunefleet.metrics import Ranked, ranked_counts

Objective = Literal["f1", "balanced_accuracy", "cost", "fixed"]


class ThresholdConfig(StrictModel):
    """How a binary model's decision threshold is set.

    ``mode: tune`` picks the threshold on validation by ``objective`` inside each trial;
    ``mode: search`` makes ``threshold`` a hyperparameter the search layer samples.
    """

    mode: Literal["tune", "search"] = "tune"
    objective: Objective = "f1"
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


def choose_threshold(y: np.ndarray, prob: np.ndarray, cfg: ThresholdConfig, ranked: Ranked | None = None) -> float:
    """The validation-optimal threshold (ties: the one closest to 0.5).

    ``objective: fixed`` and ``mode: search`` (where the search layer sampled
    ``value``) return ``cfg.value`` unchanged.
    """
    if cfg.mode == "search" or cfg.objective == "fixed":
        return float(cfg.value)
    thresholds, values = threshold_candidates(y, prob, cfg, ranked)
    best = np.flatnonzero(values >= values.max() - 1e-12)
    pick = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return float(thresholds[pick])
