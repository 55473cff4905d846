"""Classification metrics in plain numpy.

Trials compute the full metric set at every report, so these are vectorised numpy
(tens of microseconds on a validation split) rather than a dozen scikit-learn calls;
the tests check each one against scikit-learn.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-12

BINARY_METRICS = (
    "loss", "accuracy", "balanced_accuracy", "precision", "recall", "f1",
    "roc_auc", "pr_auc", "log_loss", "brier",
)  # fmt: skip
MULTICLASS_METRICS = ("loss", "accuracy", "macro_f1", "log_loss")
MINIMIZED = frozenset({"loss", "log_loss", "brier"})


def metric_names(task: str) -> tuple[str, ...]:
    """Names of the metrics computed for a task (without the val_/test_ prefix)."""
    return BINARY_METRICS if task == "binary" else MULTICLASS_METRICS


def metric_mode(name: str) -> str:
    """'min' for losses, 'max' for everything else; accepts prefixed names."""
    base = name.removeprefix("val_").removeprefix("test_")
    return "min" if base in MINIMIZED else "max"


def better(value: float, best: float, mode: str) -> bool:
    """Is ``value`` better than ``best`` under ``mode`` ('max' or 'min')?

    NaN is never better, and anything is better than a NaN best (no best yet).
    """
    if math.isnan(value):
        return False
    return math.isnan(best) or (value > best if mode == "max" else value < best)


def lift(test: float, baseline: float, name: str) -> float:
    """How much better ``test`` is than ``baseline`` (positive: better), for losses too."""
    return baseline - test if metric_mode(name) == "min" else test - baseline


def log_loss(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean negative log-likelihood of positive-class probabilities (1-D) or (n, K) probabilities."""
    y = np.asarray(y, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim == 1:
        p = np.clip(prob, EPS, 1 - EPS)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(-np.mean(np.log(np.clip(prob[np.arange(len(y)), y], EPS, 1.0)))) + 0.0  # no -0.0 when all certain


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


Ranked = tuple[np.ndarray, np.ndarray, np.ndarray]  # ranked_counts(): distinct scores, tp, fp


def ranked_counts(y: np.ndarray, score: np.ndarray) -> Ranked:
    """The distinct scores, highest first, and the true and false positives of calling
    positive every row scored at or above each (tied rows form one step).

    One sort serves ROC AUC, average precision and the threshold search
    (:mod:`tunefleet.thresholds`): trials compute all three for every member after every
    epoch, so :func:`tunefleet.train.epoch_metrics` ranks once and passes it on.
    Hence also ``np.concatenate`` and ``np.dot`` below, not ``np.r_``, ``np.append`` or
    ``np.diff(prepend=...)``: at these sizes their Python wrappers cost more than the sums.
    """
    if len(score) == 0:
        return np.empty(0), np.zeros(1, np.int64), np.zeros(1, np.int64)  # no rows: no positives, no negatives
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    last_of_tie = np.concatenate((np.flatnonzero(s[1:] != s[:-1]), [len(s) - 1]))
    tp = np.cumsum(t)[last_of_tie]
    return s[last_of_tie], tp, (last_of_tie + 1) - tp


def roc_auc(y: np.ndarray, score: np.ndarray, ranked: Ranked | None = None) -> float:
    """Area under the ROC curve: the trapezoids between tie groups, which is the rank-sum
    statistic with average ranks for ties (a tied positive-negative pair counts 1/2), exactly:
    every term is a count or half a count."""
    _, tp, fp = ranked if ranked is not None else ranked_counts(y, score)
    n_pos, n_neg = int(tp[-1]), int(fp[-1])
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    new_fp = _steps(fp)
    area = np.dot(new_fp, tp) + np.dot(new_fp[1:], tp[:-1])  # each step's trapezoid: new_fp * (tp + previous tp)
    return float(area / 2.0 / (n_pos * n_neg))


def average_precision(y: np.ndarray, score: np.ndarray, ranked: Ranked | None = None) -> float:
    """PR AUC as average precision (scikit-learn's definition, step-wise)."""
    _, tp, fp = ranked if ranked is not None else ranked_counts(y, score)
    n_pos = int(tp[-1])
    if n_pos == 0:
        return float("nan")
    return float(np.dot(_steps(tp), tp / (tp + fp)) / n_pos)  # recall steps times precision


def _steps(cumulative: np.ndarray) -> np.ndarray:
    """What each tie group adds to a cumulative count."""
    out = cumulative.copy()
    out[1:] -= cumulative[:-1]
    return out


def _safe_div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def binary_metrics(
    y: np.ndarray, prob: np.ndarray, threshold: float | np.ndarray, ranked: Ranked | None = None
) -> dict[str, float]:
    """All binary metrics for positive-class probabilities at a decision threshold (one, or one per row:
    a paired permutation swaps rows between two models with their thresholds; :mod:`tunefleet.compare`)
    (``ranked``: :func:`ranked_counts` of the same ``y`` and ``prob``, when the caller has it)."""
    y = np.asarray(y, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    ranked = ranked if ranked is not None else ranked_counts(y, prob)
    pred = (prob >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    tn = len(y) - tp - fp - fn
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    specificity = _safe_div(tn, tn + fp)
    nll = log_loss(y, prob)
    return {
        "loss": nll,
        "accuracy": (tp + tn) / len(y),
        "balanced_accuracy": (recall + specificity) / 2,
        "precision": precision,
        "recall": recall,
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(y, prob, ranked),
        "pr_auc": average_precision(y, prob, ranked),
        "log_loss": nll,
        "brier": float(np.mean((prob - y) ** 2)),
    }


def multiclass_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Accuracy, macro F1 and log loss for an (n, K) probability matrix."""
    y = np.asarray(y, dtype=np.int64)
    n_classes = prob.shape[1]
    pred = prob.argmax(axis=1)
    cm = confusion_matrix(y, pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = cm.sum(axis=1) + cm.sum(axis=0) > 0
    nll = log_loss(y, prob)
    return {
        "loss": nll,
        "accuracy": float(tp.sum() / len(y)),
        "macro_f1": float(f1[present].mean()),
        "log_loss": nll,
    }


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """``{'accuracy': ..}`` -> ``{'val_accuracy': ..}``."""
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items()}
