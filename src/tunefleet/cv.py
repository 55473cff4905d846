"""Cross-validated trials (``split.cv_folds: K`` / ``--cv K``).

On a small split the best trial's validation score is optimistic: it was picked for
being high on a few hundred rows. With K folds of train + validation (the test split
untouched) a trial trains K fold models and scores the mean of their fold metrics, so
the search selects on K times as many held-out rows:

- the fold models train side by side, one epoch each in turn (:class:`tunefleet.train.Run`),
  so the trial reports the fold mean after every epoch, and ASHA or Optuna's pruner
  decide on that mean at each rung, as they decide on one model's metric without CV;
- each fold's scaler is fitted on its own training rows (:func:`tunefleet.splits.prepare_data`);
- the temperature and the threshold are chosen once, on the out-of-fold predictions
  (every train + validation row, predicted by the model that did not train on it); the
  fold metrics use both, and their mean and standard deviation are the trial's metrics;
- the trial's model is its K fold models, averaged (a bagged ensemble: every train +
  validation row trains K-1 of them), with that out-of-fold temperature and threshold. A
  refit on all of train + validation would be a model no held-out row has judged: its
  epoch count, temperature and threshold all borrowed from the folds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from tunefleet.bundle import bundle_of, network_of
from tunefleet.calibration import fit_temperature, probabilities
from tunefleet.metrics import binary_metrics, multiclass_metrics, prefixed
from tunefleet.splits import PreparedData
from tunefleet.thresholds import choose_threshold
from tunefleet.train import (
    EpochLog,
    ReportHook,
    Run,
    TrainResult,
    as_tensor,
    kept_epoch,
    train_one,
)
from tunefleet.train_config import TrainConfig


def train_trial(config: TrainConfig, data: PreparedData, report: ReportHook | None = None) -> TrainResult:
    """What one search trial trains: its K fold models when the data has folds, else one model."""
    return train_cv(config, data, report) if data.folds else train_one(config, data, report)


def mean_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """The fold mean of one epoch's history rows (the keys all folds report)."""
    keys = set.intersection(*(set(r) for r in rows))
    return {k: float(np.mean([r[k] for r in rows])) for k in sorted(keys)}


def train_cv(config: TrainConfig, data: PreparedData, report: ReportHook | None = None) -> TrainResult:
    """Train the K fold models of one config in turn, epoch by epoch; report the fold mean.

    A fold whose patience ran out stops; the epoch's mean is over the folds that trained
    it. ``report`` returning True stops the trial there, as with ``train_one``.
    """
    started = time.perf_counter()
    runs = [Run(config, fold) for fold in data.folds]
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        active = [run for run in runs if not run.log.done()]
        if not active:
            break
        row = mean_row([run.epoch(epoch) for run in active])
        history.append(row)
        if report is not None and report(epoch, row) and epoch < config.epochs:
            break
    return _cv_result(config, data, runs, history, started)


@dataclass(frozen=True)
class FoldPart:
    """One fold model's end: its kept weights, its logits on its held-out rows, its curve."""

    state_dict: dict[str, np.ndarray]
    val_logits: np.ndarray
    log: EpochLog


def _fold_part(run: Run) -> FoldPart:
    model = run.kept_model().eval()
    with torch.no_grad():
        logits = model(as_tensor(run.data.X_val, run.device)).cpu().numpy()
    state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return FoldPart(state, logits, run.log)


def _cv_result(
    cfg: TrainConfig, data: PreparedData, runs: list[Run], history: list[dict[str, float]], started: float
) -> TrainResult:
    parts = [_fold_part(run) for run in runs]
    return folds_result(cfg, data, parts, history, time.perf_counter() - started, str(runs[0].device))


def folds_result(
    cfg: TrainConfig, data: PreparedData, parts: Sequence[FoldPart], history: list[dict[str, float]], seconds: float,
    device: str,
) -> TrainResult:  # fmt: skip
    """A cross-validated trial from its fold models (trained one after another, or as cohort members).

    The temperature and the threshold are chosen once, on the out-of-fold predictions (the
    folds' held-out rows, in fold order: every trial's out-of-fold rows line up); the fold
    metrics use both, and their mean and standard deviation are the trial's metrics. Its
    bundle averages its K fold models, each read through its own fold's encoding and scaler.
    """
    ys = [fold.y_val for fold in data.folds]
    oof_logits, oof_y = np.concatenate([p.val_logits for p in parts]), np.concatenate(ys)
    temperature = fit_temperature(oof_logits, oof_y) if cfg.calibrate else 1.0
    oof_proba = probabilities(oof_logits, temperature)
    threshold = choose_threshold(oof_y, oof_proba, cfg.threshold) if data.task == "binary" else None
    per_fold = []
    for part, y in zip(parts, ys, strict=True):
        proba = probabilities(part.val_logits, temperature)
        per_fold.append(binary_metrics(y, proba, threshold) if threshold is not None else multiclass_metrics(y, proba))
    names = sorted(set.intersection(*(set(m) for m in per_fold)))
    mean = {k: float(np.nanmean([m[k] for m in per_fold])) for k in names}
    std = {f"{k}_std": float(np.nanstd([m[k] for m in per_fold])) for k in names}
    best_epochs = [kept_epoch(cfg, part.log) for part in parts]
    metrics = {
        **prefixed(mean, "val"),
        **prefixed(std, "val"),
        "best_epoch": float(np.mean(best_epochs)),
        "epochs_run": float(len(history)),
        "temperature": temperature,
        "cv_folds": float(len(parts)),
    }
    if threshold is not None:
        metrics["threshold"] = threshold
    members = tuple(
        replace(network_of(cfg, fold, part.state_dict, temperature), weight=1 / len(parts))
        for fold, part in zip(data.folds, parts, strict=True)
    )
    return TrainResult(
        config=cfg,
        history=history,
        best_epoch=round(metrics["best_epoch"]),
        metrics=metrics,
        val_probabilities=oof_proba,
        bundle=bundle_of(data, members, threshold),
        seconds=seconds,
        device=device,
    )
