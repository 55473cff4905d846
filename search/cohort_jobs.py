"""The contract between the cohort loop and the backends that train cohorts.

A :class:`CohortJob` is one cohort: some trials, each with all of its members (its K
cross-validation folds, or its one model on the split), fresh or resumed from a rung, and
the epoch each trains to. ``run_cohort`` trains it with the pure ``train_members`` and
returns a :class:`TrialOutcome` per trial: paused at its rung with its members' states, or
finished with its result (calibrated, thresholded, its bundle), assembled where it trained.
A trial's folds always train in one cohort, so that assembly needs no other cohort. It is
the same function wherever a cohort trains; a backend lends the :class:`CohortRunner`: one
in this process (:mod:`tunefleet.search.in_process.backend`), or Ray tasks on a local Ray or
a cluster (:mod:`tunefleet.search.ray.cohort_tasks`). Bundles and states come back to the
driver with the outcomes (KB to a few MB), so workers need no shared storage. A paused
trial's states travel as pickled bytes the driver hands back unread: unpickling them would
import the core's training modules, and torch with them, into a driver that trains nothing.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from tunefleet.errors import first_line
from tunefleet.splits import PreparedData
from tunefleet.train_config import TrainConfig

if TYPE_CHECKING:  # torch is imported where a cohort trains, never by a driver that only hands them out
    from tunefleet.bundle import ModelBundle
    from tunefleet.cohort import MemberRun


@dataclass(frozen=True)
class TrialJob:
    """One trial's part of a cohort: its config, its members' states to resume (None: fresh), its target epoch."""

    trial_id: str
    config: TrainConfig
    states: bytes | None = None  # its members' pickled states (tunefleet.cohort.MemberState); None: fresh
    until: int | None = None  # a rung; None: its last epoch


@dataclass(frozen=True)
class CohortJob:
    cohort_id: str
    trials: tuple[TrialJob, ...]
    widest: int  # every hidden layer padded to this width: the search's shapes (tunefleet.stack)


@dataclass
class TrialOutcome:
    status: Literal["paused", "finished", "failed"]
    history: list[dict[str, float]] = field(default_factory=list)  # its model's rows, or its folds' means
    states: bytes | None = None  # paused: where to resume it from (opaque to the driver)
    metrics: dict[str, float] = field(default_factory=dict)
    bundle: ModelBundle | None = None
    val_probabilities: np.ndarray | None = None  # finished: on its validation (or out-of-fold) rows
    node_id: str = "local"
    error: str | None = None
    seconds: float = 0.0


def views_of(data: PreparedData) -> tuple[PreparedData, ...]:
    """What members train on: the K folds of a cross-validated search, else the split itself."""
    return data.folds or (data,)


def run_cohort(job: CohortJob, data: PreparedData, node_id: str = "local") -> list[TrialOutcome]:
    """Train one cohort; a trial whose members all ended is finished, otherwise paused at its rung.

    ``train_members`` (and torch) is imported here, where a cohort trains (a Ray worker, or
    the one process of ``backend: optuna``): a driver that hands cohorts to workers never
    imports torch.
    """
    from tunefleet.cohort import Member, train_members
    from tunefleet.datasets import n_outputs_for
    from tunefleet.stack import padded_shapes

    views = views_of(data)
    resumed = [pickle.loads(t.states) if t.states else None for t in job.trials]
    members = [
        Member(t.config, v, states[v] if states else None, t.until)
        for t, states in zip(job.trials, resumed, strict=True)
        for v in range(len(views))
    ]
    layers = len(job.trials[0].config.hidden_widths)
    shapes = padded_shapes(max(v.n_features for v in views), [job.widest] * layers, n_outputs_for(data.n_classes))
    started = time.perf_counter()
    try:
        runs = train_members(members, views, shapes=shapes)
    except Exception as err:  # noqa: BLE001 - the trials are recorded as failed, the search goes on
        return [TrialOutcome("failed", node_id=node_id, error=first_line(err)) for _ in job.trials]
    seconds = (time.perf_counter() - started) / len(job.trials)  # trials share the time
    k = len(views)
    return [_outcome(t, data, runs[i * k : (i + 1) * k], seconds, node_id) for i, t in enumerate(job.trials)]


def _outcome(
    trial: TrialJob, data: PreparedData, runs: Sequence[MemberRun], seconds: float, node_id: str
) -> TrialOutcome:
    from tunefleet.cv import FoldPart, folds_result, mean_row
    from tunefleet.train import resolve_device, single_result

    if not data.folds:
        history = list(runs[0].state.log.history)
    else:
        epochs = max(len(run.state.log.history) for run in runs)
        history = [
            mean_row([r.state.log.history[e] for r in runs if len(r.state.log.history) > e]) for e in range(epochs)
        ]
    if any(run.status == "paused" for run in runs):
        states = pickle.dumps(tuple(run.state for run in runs))
        return TrialOutcome(
            "paused", history, states, dict(history[-1]) if history else {}, node_id=node_id, seconds=seconds
        )
    device = str(resolve_device(trial.config.device))
    if data.folds:
        parts = [FoldPart(run.state_dict, run.val_logits, run.state.log) for run in runs]  # type: ignore[arg-type]
        result = folds_result(trial.config, data, parts, history, seconds, device)
    else:
        run = runs[0]
        result = single_result(trial.config, data, run.state_dict, run.val_logits, run.state.log, seconds, device)  # type: ignore[arg-type]
    return TrialOutcome(
        "finished", history, None, result.metrics, result.bundle, result.val_probabilities, node_id, None, seconds
    )


class CohortRunner(Protocol):
    def start(self, jobs: Sequence[CohortJob]) -> None:
        """Hand one round's cohorts to the workers (the longest first)."""
        ...

    def results(self) -> list[list[TrialOutcome]]:
        """Block until every started cohort has come back; each cohort's outcomes, in the order started."""
        ...

    def close(self) -> None:
        """Give up the cohorts still running: the search ends early (Ctrl-C, an error)."""
        ...
