"""PNG figures logged on the parent run: curves, ROC/PR with the chosen threshold,
confusion matrix, calibration, optimization history and parallel coordinates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from search.result import TrialRecord
from tunefleet.evaluation import SplitScores
from tunefleet.metrics import better


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def curves(best: TrialRecord, metric: str, out: Path) -> Path:
    epochs = [row["epoch"] for row in best.history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [r.get("train_loss", math.nan) for r in best.history], label="train loss")
    a.plot(epochs, [r.get("val_loss", math.nan) for r in best.history], label="validation loss")
    a.axvline(best.metrics.get("best_epoch", math.nan), color="grey", ls="--", label="kept epoch")
    a.set(xlabel="epoch", ylabel="loss", title=f"best trial {best.trial_id}")
    a.legend()
    b.plot(epochs, [r.get(metric, math.nan) for r in best.history], color="C2")
    b.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
    return _save(fig, out / "curves.png")


def roc_pr(y: np.ndarray, prob: np.ndarray, threshold: float, out: Path) -> list[Path]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, roc_t = roc_curve(y, prob)
    pre, rec, pr_t = precision_recall_curve(y, prob)
    pred = prob >= threshold
    at_tpr = float(np.mean(pred[y == 1])) if (y == 1).any() else math.nan
    at_fpr = float(np.mean(pred[y == 0])) if (y == 0).any() else math.nan
    at_pre = float(np.mean(y[pred])) if pred.any() else math.nan
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.scatter([at_fpr], [at_tpr], color="red", zorder=3, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend()
    paths = [_save(fig, out / "roc.png")]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(rec, pre)
    ax.scatter([at_tpr], [at_pre], color="red", zorder=3, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall (test)")
    ax.legend()
    paths.append(_save(fig, out / "precision_recall.png"))
    del roc_t, pr_t
    return paths


def confusion(cm: np.ndarray, labels: tuple, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(max(4, len(labels) * 0.6), max(4, len(labels) * 0.6)))
    ax.imshow(cm, cmap="Blues")
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=[str(x) for x in labels],
        yticklabels=[str(x) for x in labels],
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix (test)",
    )
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white")
    return _save(fig, out / "confusion_matrix.png")


def calibration(y: np.ndarray, proba: np.ndarray, out: Path, bins: int = 10) -> Path:
    """Reliability diagram: positive-class probability (binary) or top-class confidence."""
    if proba.shape[1] == 2:
        conf, hit, label = proba[:, 1], (y == 1).astype(float), "P(positive)"
    else:
        conf, hit, label = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float), "top-class confidence"
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    xs = [conf[idx == b].mean() for b in range(bins) if (idx == b).any()]
    ys = [hit[idx == b].mean() for b in range(bins) if (idx == b).any()]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.plot(xs, ys, marker="o")
    ax.set(xlabel=label, ylabel="observed frequency", title="calibration (test)")
    return _save(fig, out / "calibration.png")


def optimization_history(trials: list[TrialRecord], metric: str, mode: str, out: Path) -> Path:
    values = [t.metric(metric) for t in trials]
    best, running = math.nan, []
    for v in values:
        if better(v, best, mode):
            best = v
        running.append(best)
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = ["C0" if t.status == "finished" else "C1" if t.status == "stopped" else "C3" for t in trials]
    ax.scatter(range(1, len(values) + 1), values, c=colors, s=18, label="trial (orange: stopped early)")
    ax.plot(range(1, len(values) + 1), running, color="black", label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title="optimization history")
    ax.legend()
    return _save(fig, out / "optimization_history.png")


def parallel_coordinates(trials: list[TrialRecord], metric: str, out: Path) -> Path:
    keys = ["lr", "batch_size", "n_layers", "epochs", "weight_decay", metric]
    rows = []
    for t in trials:
        v = t.metric(metric)
        if math.isnan(v):
            continue
        rows.append(
            [
                math.log10(t.params["lr"]),
                t.params["batch_size"],
                t.params.get("n_layers", 0),
                t.params["epochs"],
                math.log10(t.params["weight_decay"]),
                v,
            ]
        )
    fig, ax = plt.subplots(figsize=(9, 4))
    if rows:
        arr = np.asarray(rows, dtype=float)
        span = np.ptp(arr, axis=0)
        norm = (arr - arr.min(axis=0)) / np.where(span > 0, span, 1)
        cmap = plt.get_cmap("viridis")
        for r in norm:
            ax.plot(range(len(keys)), r, color=cmap(r[-1]), alpha=0.7)
    ax.set_xticks(range(len(keys)), ["log10 lr", "batch", "layers", "epochs", "log10 wd", metric])
    ax.set(title="hyperparameters vs metric (normalised; colour = metric)")
    return _save(fig, out / "parallel_coordinates.png")


def importance(ranked: dict[str, dict[str, float]], out: Path) -> Path:
    """One bar chart per importance evaluator (shares of 1), and the same numbers as a JSON table."""
    (out / "importance.json").write_text(json.dumps(ranked, indent=2))
    fig, axes = plt.subplots(1, len(ranked), figsize=(5 * len(ranked), 3.5), squeeze=False)
    for ax, (name, shares) in zip(axes[0], ranked.items(), strict=True):
        items = sorted(shares.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
        ax.set(title=f"hyperparameter importance ({name})", xlabel="share", xlim=(0, 1))
    return _save(fig, out / "importance.png")


def make_all(
    out: Path,
    trials: list[TrialRecord],
    best: TrialRecord,
    test: SplitScores,
    metric: str,
    mode: str,
    ranked: dict[str, dict[str, float]] | None = None,
) -> list[Path]:
    """Every plot of a search; the test-split plots read the probabilities scored once in ``test``."""
    out.mkdir(parents=True, exist_ok=True)
    bundle = test.bundle
    paths = [
        curves(best, metric, out),
        confusion(test.confusion(), bundle.class_labels, out),
        calibration(test.y, test.proba, out),
        optimization_history(trials, metric, mode, out),
        parallel_coordinates(trials, metric, out),
    ]
    if bundle.task == "binary":
        paths += roc_pr(test.y, test.proba[:, 1], bundle.decision_threshold, out)
    if ranked:
        paths += [importance(ranked, out), out / "importance.json"]
    return paths
