"""The search's PNG figures, drawn from plain numbers in a process of their own.

Curves, ROC/PR with the chosen threshold, confusion matrix, calibration, optimization
history, parallel coordinates and importance. This module imports matplotlib and
numpy and nothing of the driver's: :mod:`tunefleet.pipeline.figures` runs it as a child
(``python -m tunefleet.pipeline.drawing``) that imports matplotlib while the trials train, and
draws on a core of its own while the driver logs and registers the model. In the
driver the figures' ~1.1 CPU-s and matplotlib's import held the interpreter lock that
the search's last steps were waiting on.

The child reads pickled messages from stdin, the output folder with a
:class:`tunefleet.pipeline.figures.FigureData` and then the importance ranking (or None), and
writes the pickled list of the files it made to stdout.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tunefleet.metrics import better
from tunefleet.pipeline.figures import FigureData, Ranking

DPI = 90


def _figure(**kwargs: Any) -> tuple[Any, Any]:
    """A figure at the saved resolution (tight_layout's text measures are then reused by the save)."""
    return plt.subplots(dpi=DPI, **kwargs)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def curves(d: FigureData, out: Path) -> Path:
    epochs = [row["epoch"] for row in d.history]
    fig, (a, b) = _figure(ncols=2, figsize=(10, 4))
    a.plot(epochs, [r.get("train_loss", math.nan) for r in d.history], label="train loss")
    a.plot(epochs, [r.get("val_loss", math.nan) for r in d.history], label="validation loss")
    a.axvline(d.best_epoch, color="grey", ls="--", label="kept epoch")
    a.set(xlabel="epoch", ylabel="loss", title=f"best trial {d.best_id}")
    a.legend()
    b.plot(epochs, [r.get(d.metric, math.nan) for r in d.history], color="C2")
    b.set(xlabel="epoch", ylabel=d.metric, title=f"{d.metric} per epoch")
    return _save(fig, out / "curves.png")


def roc_pr(d: FigureData, out: Path) -> list[Path]:
    if d.roc is None or d.pr is None or d.threshold is None:
        return []
    y, pred = d.y, d.proba[:, 1] >= d.threshold
    at_tpr = float(np.mean(pred[y == 1])) if (y == 1).any() else math.nan
    at_fpr = float(np.mean(pred[y == 0])) if (y == 0).any() else math.nan
    at_pre = float(np.mean(y[pred])) if pred.any() else math.nan
    label = f"threshold {d.threshold:.3f}"
    fig, ax = _figure(figsize=(5, 5))
    ax.plot(*d.roc)
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.scatter([at_fpr], [at_tpr], color="red", zorder=3, label=label)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend()
    paths = [_save(fig, out / "roc.png")]
    fig, ax = _figure(figsize=(5, 5))
    ax.plot(*d.pr)
    ax.scatter([at_tpr], [at_pre], color="red", zorder=3, label=label)
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall (test)")
    ax.legend()
    paths.append(_save(fig, out / "precision_recall.png"))
    return paths


def confusion(d: FigureData, out: Path) -> Path:
    cm, labels = d.confusion, d.labels
    fig, ax = _figure(figsize=(max(4, len(labels) * 0.6), max(4, len(labels) * 0.6)))
    ax.imshow(cm, cmap="Blues")
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=list(labels),
        yticklabels=list(labels),
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix (test)",
    )
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white")
    return _save(fig, out / "confusion_matrix.png")


def calibration(d: FigureData, out: Path, bins: int = 10) -> Path:
    """Reliability diagram: positive-class probability (binary) or top-class confidence."""
    y, proba = d.y, d.proba
    if proba.shape[1] == 2:
        conf, hit, label = proba[:, 1], (y == 1).astype(float), "P(positive)"
    else:
        conf, hit, label = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float), "top-class confidence"
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    xs = [conf[idx == b].mean() for b in range(bins) if (idx == b).any()]
    ys = [hit[idx == b].mean() for b in range(bins) if (idx == b).any()]
    fig, ax = _figure(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.plot(xs, ys, marker="o")
    ax.set(xlabel=label, ylabel="observed frequency", title="calibration (test)")
    return _save(fig, out / "calibration.png")


def optimization_history(d: FigureData, out: Path) -> Path:
    values = [t.value for t in d.trials]
    best, running = math.nan, []
    for v in values:
        if better(v, best, d.mode):
            best = v
        running.append(best)
    fig, ax = _figure(figsize=(7, 4))
    colors = ["C0" if t.status == "finished" else "C1" if t.status == "stopped" else "C3" for t in d.trials]
    ax.scatter(range(1, len(values) + 1), values, c=colors, s=18, label="trial (orange: stopped early)")
    ax.plot(range(1, len(values) + 1), running, color="black", label="best so far")
    ax.set(xlabel="trial", ylabel=d.metric, title="optimization history")
    ax.legend()
    return _save(fig, out / "optimization_history.png")


def parallel_coordinates(d: FigureData, out: Path) -> Path:
    rows = [
        [
            math.log10(t.params["lr"]),
            t.params["batch_size"],
            t.params["n_layers"],
            t.params["epochs"],
            math.log10(max(t.params["weight_decay"], 1e-12)),  # a space may fix it at 0
            t.value,
        ]
        for t in d.trials
        if not math.isnan(t.value)
    ]
    fig, ax = _figure(figsize=(9, 4))
    if rows:
        arr = np.asarray(rows, dtype=float)
        span = np.ptp(arr, axis=0)
        norm = (arr - arr.min(axis=0)) / np.where(span > 0, span, 1)
        cmap = plt.get_cmap("viridis")
        for r in norm:
            ax.plot(range(len(r)), r, color=cmap(r[-1]), alpha=0.7)
    ax.set_xticks(range(6), ["log10 lr", "batch", "layers", "epochs", "log10 wd", d.metric])
    ax.set(title="hyperparameters vs metric (normalised; colour = metric)")
    return _save(fig, out / "parallel_coordinates.png")


def importance(ranked: Ranking, out: Path) -> list[Path]:
    """One bar chart per importance evaluator (shares of 1), and the same numbers as a JSON table."""
    table = out / "importance.json"
    table.write_text(json.dumps(ranked, indent=2))
    fig, axes = _figure(ncols=len(ranked), figsize=(5 * len(ranked), 3.5), squeeze=False)
    for ax, (name, shares) in zip(axes[0], ranked.items(), strict=True):
        items = sorted(shares.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
        ax.set(title=f"hyperparameter importance ({name})", xlabel="share", xlim=(0, 1))
    return [_save(fig, out / "importance.png"), table]


def draw_all(out: Path, d: FigureData) -> list[Path]:
    """Every figure of a search but the importance (drawn once the driver has ranked it)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [curves(d, out), confusion(d, out), calibration(d, out), optimization_history(d, out)]
    return [*paths, parallel_coordinates(d, out), *roc_pr(d, out)]


def _serve() -> int:
    """The child: draw what the driver sends (out dir and data, then the ranking); answer the paths."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        out, data = pickle.load(stdin)
    except EOFError:
        return 0  # the driver had nothing to draw (the search failed first)
    paths = draw_all(out, data)
    ranked = pickle.load(stdin)
    if ranked:
        paths += importance(ranked, out)
    pickle.dump(paths, stdout)
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
