"""Backend-neutral search results and the observer hook the pipeline layer plugs into."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tunefleet.metrics import better
from tunefleet.splits import PreparedData
from tunefleet.train_config import TrainConfig

if TYPE_CHECKING:  # torch's import is paid by whoever loads a bundle, not by reading records;
    # the spec's (the dataset catalog, the search space) by whoever runs a search, not by a trial worker
    from tunefleet.bundle import ModelBundle
    from tunefleet.candidates import Candidate, Verdict
    from tunefleet.search.experiment import ExperimentConfig

Status = Literal["finished", "stopped", "failed"]
PREDICTIONS = "val_probabilities.npy"  # beside a finished trial's bundle: its validation (or out-of-fold) predictions


def save_trial_model(bundle: ModelBundle, val_probabilities: Any, directory: str | Path) -> Path:
    """A finished trial's bundle and, beside it, its validation predictions: what the candidates are
    judged on and the ensemble is chosen from (:mod:`tunefleet.search.champion`) without a second pass."""
    import numpy as np

    path = bundle.save(directory)
    np.save(path / PREDICTIONS, np.asarray(val_probabilities))
    return path


@dataclass
class TrialRecord:
    """One trial: what was sampled, the config it trained with, how it ended, what it measured."""

    trial_id: str
    params: dict[str, Any]
    config: TrainConfig
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    node_id: str | None = None
    error: str | None = None
    bundle_dir: str | None = None
    seconds: float = 0.0
    cohort: str | None = None  # the cohort it trained in (cohort backend only)

    def metric(self, name: str) -> float:
        value = self.metrics.get(name)
        return float(value) if isinstance(value, int | float) else math.nan

    def to_json(self) -> str:
        """Shallow on purpose: ``dataclasses.asdict`` deep-copies the history and the config (10 ms a record)."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        return json.dumps({**raw, "config": self.config.model_dump(mode="json")}, default=str)

    @classmethod
    def from_json(cls, text: str) -> TrialRecord:
        raw = json.loads(text)
        return cls(**{**raw, "config": TrainConfig.model_validate(raw["config"])})


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
    best: TrialRecord | None = None  # the best finished trial by the validation metric
    best_bundle: ModelBundle | None = None  # the champion's bundle: the best trial's, an ensemble's or the baseline's
    verdict: Verdict | None = None  # the champion and every candidate it was chosen from
    baseline: Candidate | None = None  # the logistic-regression baseline, under the search's protocol

    def counts(self) -> dict[str, int]:
        out = {"finished": 0, "stopped": 0, "failed": 0}
        for t in self.trials:
            out[t.status] += 1
        return out


def pick_best(trials: list[TrialRecord], metric: str, mode: str) -> TrialRecord | None:
    """The finished trial with the best final validation metric (NaN never wins)."""
    best: TrialRecord | None = None
    for trial in trials:
        if trial.status == "finished" and better(trial.metric(metric), best.metric(metric) if best else math.nan, mode):
            best = trial
    return best


class SearchObserver(Protocol):
    """Called on the driver as trials end, so results are persisted while the search runs."""

    def on_search_start(
        self, exp: ExperimentConfig, data: PreparedData, name: str, path: Path, resumed: bool
    ) -> None: ...

    def on_trial_end(self, record: TrialRecord) -> None: ...


def tell_observers(observers: Sequence[SearchObserver], records: Sequence[TrialRecord]) -> None:
    """Each observer hears of each record, in order (every backend's one way of telling them)."""
    for record in records:
        for obs in observers:
            obs.on_trial_end(record)


def _shown(value: float) -> str:
    """A progress line's metric value: "-" until there is one (no "nan" before a trial finishes)."""
    return f"{value:.4f}" if not math.isnan(value) else "-"


def _encoding_note(data: PreparedData) -> str:
    """What became of text columns and empty cells (tunefleet.encoding): said once, at the start."""
    text, filled = data.encoding.text, data.encoding.filled
    flagged = [c.name for c in filled if c.levels is None and c.empty]
    unflagged = [c.name for c in filled if c.levels is None and not c.empty]
    empty_text = [c.name for c in filled if c.levels is not None]
    note = ""
    if text:
        levels = sum(c.width for c in text)
        note += f"; text column(s) {_some([c.name for c in text])} as {levels} indicator inputs (levels seen in train)"
    if flagged:
        note += f"; empty cells in {_some(flagged)} filled with the train median and flagged by an indicator"
    if unflagged:
        note += f"; empty cells in {_some(unflagged)} (none in train) filled with the train median"
    if empty_text:
        note += f"; empty cells in {_some(empty_text)} as a level of their own"
    return note


def _some(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


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
                f"train/val/test {'/'.join(map(str, data.sizes().values()))}); optimizing {self.metric} ({self.mode})"
                + _encoding_note(data),
                flush=True,
            )

    def on_trial_end(self, record: TrialRecord) -> None:
        self.done += 1
        value = record.metric(self.metric)
        if record.status == "finished" and better(value, self.best, self.mode):
            self.best = value
        if self.enabled:
            cfg = record.config
            ran = int(record.metrics.get("epochs_run", record.metrics.get("epoch", 0)))
            print(
                f"[{self.done:>3}/{self.total}] trial {record.trial_id:<14} {record.status:<8} "
                f"{self.metric}={_shown(value):<8} best={_shown(self.best):<6}  "
                f"lr={cfg.lr:.2e} widths={list(cfg.hidden_widths)} epochs={ran}/{cfg.epochs}",
                flush=True,
            )
