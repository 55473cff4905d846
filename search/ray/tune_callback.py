"""Tune's view of a trial -> the backend-neutral TrialRecord, and the callback that relays it.

Imported by the Ray backend only (it imports Ray Tune).

Runs on the driver. A trial is passed to the observers (MLflow logging) only once
Tune's experiment snapshot covers it, so a driver killed in between cannot leave a
logged trial that the resumed search does not know.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ray.tune import Callback

from tunefleet.config import is_uri
from tunefleet.errors import last_line
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.ray.tune_trial import CONFIG_KEY
from tunefleet.search.result import SearchObserver, TrialRecord, tell_observers
from tunefleet.train_config import TrainConfig


class TrialRelay:
    """Passes ended trials from Tune's callback to the observers, each trial once.

    One module-level instance on purpose: Ray pickles the RunConfig (callbacks included)
    into the experiment dir and unpickles it on ``--resume``, with no way to hand the
    restored callback new objects; so the callback holds no live objects (MLflow
    clients, files) and reaches the observers through this relay, which a search
    connects for exactly its own duration (:meth:`connected`).
    """

    def __init__(self) -> None:
        self.observers: tuple[SearchObserver, ...] = ()
        self.emitted: dict[str, TrialRecord] = {}

    @contextmanager
    def connected(self, observers: tuple[SearchObserver, ...]) -> Iterator[TrialRelay]:
        self.observers, self.emitted = observers, {}
        try:
            yield self
        finally:
            self.observers = ()

    def emit(self, record: TrialRecord) -> None:
        if record.trial_id in self.emitted:
            return
        self.emitted[record.trial_id] = record
        tell_observers(self.observers, [record])


RELAY = TrialRelay()


def _checkpoint_dir(checkpoint: Any) -> str | None:
    """A local directory for a Tune checkpoint (downloaded when storage is remote)."""
    if checkpoint is None:
        return None
    local = Path(checkpoint.path)
    if not is_uri(str(checkpoint.path)) and local.is_dir():
        return str(local)
    return str(checkpoint.to_directory())


def make_record(
    exp: ExperimentConfig,
    trial_id: str,
    params: dict[str, Any],
    last: dict[str, Any] | None,
    error: Any,
    checkpoint: Any,
    intermediate: list[dict[str, Any]] | None = None,
) -> TrialRecord:
    """Tune's view of a trial -> a backend-neutral TrialRecord."""
    last = dict(last or {})
    # the config the trial reported it trained with; a trial that failed before its
    # first report never said, and would have built it with the same builder
    reported = last.get(CONFIG_KEY)
    config = TrainConfig.model_validate_json(reported) if reported else exp.trial_config(params)
    metrics = {
        k: float(v)
        for k, v in last.items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and (
            k.startswith("val_")
            or k in {"best_epoch", "epochs_run", "temperature", "threshold", "epoch", "train_loss", "cv_folds"}
        )
    }
    node_id = last.get("node_id")
    if error is not None:
        why = last_line(str(error), limit=4000) or "error"
        return TrialRecord(trial_id, params, config, "failed", metrics, [], node_id, why)
    bundle_dir = _checkpoint_dir(checkpoint) if last.get("done_training") else None
    if bundle_dir:
        history = json.loads((Path(bundle_dir) / "history.json").read_text())
        return TrialRecord(
            trial_id,
            params,
            config,
            "finished",
            metrics,
            history,
            node_id,
            None,
            bundle_dir,
            float(last.get("train_seconds", 0.0)),
        )
    history = [{k: float(v) for k, v in row.items() if isinstance(v, int | float)} for row in intermediate or []]
    return TrialRecord(trial_id, params, config, "stopped", metrics, history, node_id)


def _snapshot_time(experiment_dir: str) -> float:
    """When Tune last saved the experiment state there (0 if never / not a local path)."""
    if is_uri(experiment_dir):
        return float("inf")  # remote storage: no cheap way to tell; log at once
    times = [p.stat().st_mtime for p in Path(experiment_dir).glob("experiment_state-*.json")]
    return max(times, default=0.0)


def _trial_error(trial: Any) -> str:
    """The failed trial's error text: Tune writes it to the trial's local dir first."""
    local = trial.error_file
    if local and Path(local).is_file():
        return Path(local).read_text()
    return str(trial.get_error() or "trial failed (no error text recorded)")


class ObserverCallback(Callback):
    """Forwards ended trials to the active observers, on the driver.

    A trial is passed on only once Tune's experiment snapshot (what --resume restores)
    was written after it ended. Otherwise a driver killed in between would leave a
    trial logged that the restored search does not know, and the search would end with
    more logged trials than requested.

    A module-level class on purpose: Tune pickles its callbacks into the experiment
    state, and cloudpickle stores a class defined inside a function by value, together
    with the globals it uses, so a restored callback would relay to a stale copy of
    :data:`RELAY` (and a live observer's locks would not pickle at all).
    """

    def __init__(self, exp: ExperimentConfig, experiment_dir: str) -> None:
        self.exp, self.experiment_dir = exp, experiment_dir
        self.intermediate: dict[str, list[dict[str, Any]]] = {}
        self.pending: list[tuple[float, TrialRecord]] = []

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.intermediate.setdefault(trial.trial_id, []).append(
            {k: v for k, v in result.items() if k == "epoch" or k == "train_loss" or k.startswith("val_")}
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        history = self.intermediate.pop(trial.trial_id, [])
        record = make_record(
            self.exp, trial.trial_id, dict(trial.config), trial.last_result, None, trial.checkpoint, history
        )
        self.pending.append((time.time(), record))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = _trial_error(trial)
        record = make_record(self.exp, trial.trial_id, dict(trial.config), trial.last_result, error, None)
        self.pending.append((time.time(), record))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if not self.pending:
            return
        saved = _snapshot_time(self.experiment_dir)
        ready = [r for ended, r in self.pending if ended <= saved]
        self.pending = [(ended, r) for ended, r in self.pending if ended > saved]
        for record in ready:
            RELAY.emit(record)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for _, record in self.pending:
            RELAY.emit(record)
        self.pending = []
