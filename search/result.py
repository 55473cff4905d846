"""Backend-neutral search results and the observer hook the pipeline layer plugs into."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from search.spec import ExperimentConfig
from tunefleet.bundle import ModelBundle
from tunefleet.splits import PreparedData

Status = Literal["finished", "stopped", "failed"]


@dataclass
class TrialRecord:
    """One trial: what was sampled, how it ended, and what it measured."""

    trial_id: str
    params: dict[str, Any]
    train_config: dict[str, Any]
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    node_id: str | None = None
    error: str | None = None
    bundle_dir: str | None = None
    seconds: float = 0.0

    def metric(self, name: str) -> float:
        value = self.metrics.get(name)
        return float(value) if isinstance(value, int | float) else math.nan


@dataclass
class SearchResult:
    """Every trial, the best finished one by the validation metric, and its bundle."""

    experiment: ExperimentConfig
    data: PreparedData
    backend: str
    name: str
    path: Path
    trials: list[TrialRecord]
    wall_seconds: float
    best: TrialRecord | None = None
    best_bundle: ModelBundle | None = None

    def counts(self) -> dict[str, int]:
        out = {"finished": 0, "stopped": 0, "failed": 0}
        for t in self.trials:
            out[t.status] += 1
        return out


def pick_best(trials: list[TrialRecord], metric: str, mode: str) -> TrialRecord | None:
    """The finished trial with the best final validation metric (NaN never wins)."""
    finished = [t for t in trials if t.status == "finished" and not math.isnan(t.metric(metric))]
    if not finished:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return max(finished, key=lambda t: sign * t.metric(metric))


class SearchObserver(Protocol):
    """Called on the driver as trials end, so results are persisted while the search runs."""

    def on_search_start(
        self, exp: ExperimentConfig, data: PreparedData, name: str, path: Path, resumed: bool
    ) -> None: ...

    def on_trial_end(self, record: TrialRecord) -> None: ...


class ProgressPrinter:
    """Prints one line per ended trial with the best metric so far."""

    def __init__(self, metric: str, mode: str, total: int, enabled: bool = True) -> None:
        self.metric, self.mode, self.total, self.enabled = metric, mode, total, enabled
        self.done = 0
        self.best = math.nan

    def on_search_start(self, exp: ExperimentConfig, data: PreparedData, name: str, path: Path, resumed: bool) -> None:
        if self.enabled:
            verb = "resuming" if resumed else "starting"
            print(
                f"{verb} search {name}: {self.total} trials on {exp.name} ({data.task}, split {data.split_hash}, "
                f"train/val/test {'/'.join(map(str, data.sizes().values()))}); optimizing {self.metric} ({self.mode})",
                flush=True,
            )

    def on_trial_end(self, record: TrialRecord) -> None:
        self.done += 1
        value = record.metric(self.metric)
        if record.status == "finished" and not math.isnan(value):
            better = math.isnan(self.best) or (value > self.best if self.mode == "max" else value < self.best)
            self.best = value if better else self.best
        if self.enabled:
            widths = record.train_config.get("hidden_widths", [])
            shown = f"{value:.4f}" if not math.isnan(value) else "-"
            print(
                f"[{self.done:>3}/{self.total}] trial {record.trial_id:<14} {record.status:<8} {self.metric}={shown:<8} "
                f"best={self.best:.4f}  lr={record.train_config.get('lr', float('nan')):.2e} "
                f"widths={widths} epochs={int(record.metrics.get('epochs_run', record.metrics.get('epoch', 0)))}/{record.train_config.get('epochs')}",
                flush=True,
            )
