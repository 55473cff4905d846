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
    return float(-np.mean(np.log(np.clip(prob[np.arange(len(y)), y], EPS, 1.0))))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties get average ranks)."""
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    # average ranks over ties
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ranked_counts(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct scores, highest first, and the true and false positives of calling
    positive every row scored at or above each (tied rows form one step).

    Shared by average precision and the threshold search (:mod:`tunefleet.thresholds`).
    ``np.append``, not ``np.r_``: these run for every member after every epoch, and
    ``np.r_``'s indexing machinery cost a fifth of the metrics' time.
    """
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    last_of_tie = np.append(np.flatnonzero(s[1:] != s[:-1]), len(s) - 1)
    tp = np.cumsum(t)[last_of_tie]
    return s[last_of_tie], tp, (last_of_tie + 1) - tp


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR AUC as average precision (scikit-learn's definition, step-wise)."""
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    _, tp, fp = ranked_counts(y, score)
    precision = tp / (tp + fp)
    recall = tp / n_pos
    recall_steps = np.diff(recall, prepend=0.0)
    return float(np.sum(recall_steps * precision))


def _safe_div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def binary_metrics(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    """All binary metrics for positive-class probabilities at a decision threshold."""
    y = np.asarray(y, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
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
        "roc_auc": roc_auc(y, prob),
        "pr_auc": average_precision(y, prob),
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
