"""``train_one``: the one training function every search backend runs.

Pure: it knows nothing of Ray or MLflow. The search layer passes a ``report`` hook to
see a trial between epochs, and stop it there by returning True. The config holds hyperparameters
and training settings only; the data is an argument, loaded once by the caller.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tunefleet.bundle import ModelBundle, bundle_of, network_of
from tunefleet.calibration import fit_temperature, probabilities
from tunefleet.datasets import n_outputs_for
from tunefleet.metrics import binary_metrics, multiclass_metrics, prefixed, ranked_counts
from tunefleet.model import MLP
from tunefleet.splits import PreparedData
from tunefleet.thresholds import ThresholdConfig, choose_threshold
from tunefleet.train_config import TrainConfig

# (epoch, history row) -> True to stop the trial there (its result holds what it trained until then):
# the one stop contract of train_one, cross-validated trials and cohort members
ReportHook = Callable[[int, dict[str, float]], bool | None]


@dataclass
class TrainResult:
    """Everything one trial produced."""

    config: TrainConfig
    history: list[dict[str, float]]
    best_epoch: int
    metrics: dict[str, float]
    val_probabilities: np.ndarray
    bundle: ModelBundle
    seconds: float
    device: str

    @property
    def threshold(self) -> float | None:
        return self.bundle.threshold


def resolve_device(choice: str) -> torch.device:
    """'auto' takes the (Ray-assigned, via CUDA_VISIBLE_DEVICES) GPU when there is one."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def epoch_metrics(
    task: str, logits: np.ndarray, y: np.ndarray, cfg: ThresholdConfig, temperature: float = 1.0
) -> tuple[dict[str, float], float | None]:
    """Validation metrics for logits: binary metrics use the threshold chosen by ``cfg``."""
    prob = probabilities(logits, temperature)
    if task == "binary":
        y = np.asarray(y, dtype=np.int64)
        ranked = ranked_counts(y, prob)  # one sort for the threshold, ROC AUC and PR AUC
        threshold = choose_threshold(y, prob, cfg, ranked)
        return binary_metrics(y, prob, threshold, ranked), threshold
    return multiclass_metrics(y, prob), None


def _make_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A tensor on ``device`` that never aliases a read-only array.

    Arrays that Ray hands to a trial from its object store are read-only, and
    ``torch.from_numpy`` warns on them; copying those few (small, tabular) arrays once is
    cheaper than the warning in every trial process and rules out writes into shared memory.
    """
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).to(device)


class EpochLog:
    """One member's curve, best epoch by validation loss, and patience counter.

    Shared by ``train_one`` and the cohort trainer, so both keep the same best epoch
    and stop at the same epoch for the same curve.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.history: list[dict[str, float]] = []
        self.best_loss, self.best_epoch, self.stale = float("inf"), 0, 0

    def add(self, row: dict[str, float]) -> bool:
        """Record an epoch; True when it is the new best (keep its weights)."""
        self.history.append(row)
        if row["val_loss"] < self.best_loss - 1e-9:
            self.best_loss, self.best_epoch, self.stale = row["val_loss"], int(row["epoch"]), 0
            return True
        self.stale += 1
        return False

    def done(self) -> bool:
        """The member's last epoch was trained, or its patience ran out."""
        patience = self.cfg.patience
        return len(self.history) >= self.cfg.epochs or (patience is not None and self.stale >= patience)


def epoch_row(
    task: str, epoch: int, train_loss: float, val_logits: np.ndarray, data: PreparedData, cfg: TrainConfig
) -> dict[str, float]:
    """The history row of one epoch: train loss and the validation metrics."""
    metrics, _ = epoch_metrics(task, val_logits, data.y_val, cfg.threshold)
    return {"epoch": float(epoch), "train_loss": train_loss, **prefixed(metrics, "val")}


class Run:
    """One model in training, an epoch at a time: ``train_one`` runs one, cross-validation
    (:mod:`tunefleet.cv`) runs a trial's fold models side by side, epoch by epoch."""

    def __init__(self, cfg: TrainConfig, data: PreparedData) -> None:
        self.cfg, self.data, self.started = cfg, data, time.perf_counter()
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        binary = data.task == "binary"
        self.model = MLP(data.n_features, cfg.hidden_widths, n_outputs_for(data.n_classes)).to(self.device)
        self.loss_fn: nn.Module = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
        self.optimizer = _make_optimizer(cfg, self.model.parameters())
        self.X_train = as_tensor(data.X_train, self.device)
        y_train = as_tensor(data.y_train, self.device)
        self.y_train = y_train.float() if binary else y_train
        self.X_val = as_tensor(data.X_val, self.device)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.log = EpochLog(cfg)
        self.best_state = copy.deepcopy(self.model.state_dict())

    def epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch of seeded shuffled batches; return its history row (validation metrics)."""
        cfg, model, n = self.cfg, self.model, len(self.X_train)
        model.train()
        perm = torch.randperm(n, generator=self.generator).to(self.device)
        total = torch.zeros((), device=self.device)
        for start in range(0, n, cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(model(self.X_train[idx]), self.y_train[idx])
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * len(idx)
        model.eval()
        with torch.no_grad():
            val_logits = model(self.X_val).cpu().numpy()
        row = epoch_row(self.data.task, epoch, float(total.item()) / n, val_logits, self.data, cfg)
        if self.log.add(row):
            self.best_state = copy.deepcopy(model.state_dict())
        return row

    def kept_model(self) -> MLP:
        """The model with the weights ``keep`` asks for (the best epoch's, or the last)."""
        if self.cfg.keep == "best":
            self.model.load_state_dict(self.best_state)
        return self.model

    def result(self) -> TrainResult:
        return finish(self.cfg, self.data, self.kept_model(), self.log, self.started, self.device)


def train_one(config: TrainConfig, data: PreparedData, report: ReportHook | None = None) -> TrainResult:
    """Train one classifier and return its curves, validation metrics and bundle.

    Batches are slices of a seeded random permutation of in-memory tensors (no
    per-sample DataLoader). The weights of the best epoch by validation loss are kept
    (``keep: last`` keeps the final ones). Binary thresholds are chosen on validation.
    ``report(epoch, row)`` returning True stops it there (a pruned trial: its result holds
    what it trained until then); a last epoch is an end, not a stop.
    """
    run = Run(config, data)
    for epoch in range(1, config.epochs + 1):
        row = run.epoch(epoch)
        if (report is not None and report(epoch, row) and epoch < config.epochs) or run.log.done():
            break
    return run.result()


def kept_epoch(cfg: TrainConfig, log: EpochLog) -> int:
    """The epoch whose weights are kept: the best by validation loss, or the last trained."""
    return len(log.history) if cfg.keep == "last" else log.best_epoch


def single_result(
    cfg: TrainConfig, data: PreparedData, state_dict: dict[str, np.ndarray], val_logits: np.ndarray, log: EpochLog,
    seconds: float, device: str,
) -> TrainResult:  # fmt: skip
    """One model's ending: calibrate and choose the threshold on its validation rows, and build its bundle."""
    temperature = fit_temperature(val_logits, data.y_val) if cfg.calibrate else 1.0
    final, threshold = epoch_metrics(data.task, val_logits, data.y_val, cfg.threshold, temperature)
    metrics_out = {
        **prefixed(final, "val"),
        "best_epoch": float(kept_epoch(cfg, log)),
        "epochs_run": float(len(log.history)),
        "temperature": temperature,
    }
    if threshold is not None:
        metrics_out["threshold"] = threshold
    network = network_of(cfg, data, state_dict, temperature)
    return TrainResult(
        config=cfg,
        history=log.history,
        best_epoch=kept_epoch(cfg, log),
        metrics=metrics_out,
        val_probabilities=probabilities(val_logits, temperature),
        bundle=bundle_of(data, (network,), threshold),
        seconds=seconds,
        device=device,
    )


def finish(
    cfg: TrainConfig, data: PreparedData, model: MLP, log: EpochLog, started: float, device: torch.device
) -> TrainResult:
    """The kept weights in ``model`` to a result: their validation logits, then :func:`single_result`."""
    model.eval()
    with torch.no_grad():
        val_logits = model(as_tensor(data.X_val, device)).cpu().numpy()
    state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return single_result(cfg, data, state, val_logits, log, time.perf_counter() - started, str(device))
