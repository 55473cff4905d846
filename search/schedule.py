"""When trials are judged, and how: one schedule for every way of running trials.

Rungs are the epochs ``grace * eta**i`` below a search's last epoch: the final epoch is an
end, never a rung (a trial that trained its last epoch is finished, not judged). At a rung
a trial goes on only if its value is among the best ``1/eta`` of every value recorded at
that rung (Li et al., 2020). What differs between the rules is *when* a trial is judged:

- ``sh`` (successive halving, judged together): every trial that reaches a rung in one
  round is judged with all the others of that round, once all of them have reported, by
  their rank among everything recorded at that rung so far. Cohorts train in rounds
  (:mod:`tunefleet.search.cohorts.loop`), so arrival order plays no part;
- ``asha`` (judged on arrival, as Ray's ASHA): each trial against the values recorded
  before it, in the order they arrive, so the first trial at a rung always goes on. Ray
  Tune trials run on their own and are judged so; cohorts can too, in trial order, to
  measure the difference;
- ``median``: Ray's median stopping rule, Tune trials only; ``none``: no trial is stopped.

:func:`report_epochs` says when a trial reports for a decision: the Tune trial's reporter,
the in-process loop and the cohort rounds all read the same rungs. A report hook of
``train_one``, a CV trial or a cohort returns True to stop the trial there: one contract.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the standard library at run time
    from tunefleet.search.experiment import ExperimentConfig
    from tunefleet.search.result import TrialRecord


def rung_epochs(grace_period: int, reduction_factor: int, max_epochs: int) -> tuple[int, ...]:
    """The epochs at which trials are judged: grace, grace*eta, ... strictly below the last epoch."""
    rungs, rung = [], grace_period
    while rung < max_epochs:
        rungs.append(rung)
        rung *= reduction_factor
    return tuple(rungs)


def _better_first(values: Mapping[str, float], mode: str) -> list[str]:
    """Trial ids, best value first; ties in trial id order (deterministic)."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(values, key=lambda t: (sign * values[t], t))


@dataclass
class Schedule:
    """A search's rungs, its rule, and the values recorded at each rung (by trial id)."""

    name: str
    rungs: tuple[int, ...]
    reduction_factor: int
    mode: str
    recorded: dict[int, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, exp: ExperimentConfig) -> Schedule:
        sched = exp.search.scheduler
        stops = sched.name in ("sh", "asha")
        rungs = rung_epochs(sched.grace_period, sched.reduction_factor, exp.space.max_epochs()) if stops else ()
        return cls(sched.name, rungs, sched.reduction_factor, exp.mode)

    def next_rung(self, epoch: int) -> int | None:
        """The first rung after ``epoch`` (None: none left, train to the end)."""
        return next((r for r in self.rungs if r > epoch), None)

    def keep(self, rung: int, arrived: Mapping[str, float]) -> set[str]:
        """Which of the trials that reached ``rung`` go on, and record their values.

        ``sh``: judged together, by rank among everything recorded at the rung, theirs
        included. ``asha``: one at a time, in trial id order (their arrival), each against
        what was recorded before it. A NaN value never goes on.
        """
        table = self.recorded.setdefault(rung, {})
        finite = {t: v for t, v in arrived.items() if not math.isnan(v)}
        if self.name == "asha":
            going = set()
            for trial in sorted(finite):
                if self._among_best(trial, finite[trial], table):
                    going.add(trial)
                table[trial] = finite[trial]
            return going
        table.update(finite)
        ranked = _better_first(table, self.mode)
        top = set(ranked[: math.ceil(len(ranked) / self.reduction_factor)])
        return {t for t in finite if t in top}

    def stops(self, trial: str, epoch: int, value: float) -> bool:
        """One trial judged alone on arrival (the in-process loop's trials run one after another)."""
        if epoch not in self.rungs:
            return False
        return trial not in self.keep(epoch, {trial: value})

    def _among_best(self, trial: str, value: float, table: Mapping[str, float]) -> bool:
        earlier = {t: v for t, v in table.items() if t != trial}
        if not earlier:  # as Ray's ASHA: the first value at a rung always goes on
            return True
        ranked = _better_first({**earlier, trial: value}, self.mode)
        return ranked.index(trial) < math.ceil(len(ranked) / self.reduction_factor)

    def refill(self, records: Iterable[TrialRecord], metric: str) -> None:
        """Put the rung values of earlier trials (a resumed search's) back in the table."""
        for record in records:
            for row in record.history:
                epoch = int(row.get("epoch", 0))
                if epoch in self.rungs and metric in row:
                    self.recorded.setdefault(epoch, {})[record.trial_id] = float(row[metric])


def report_epochs(exp: ExperimentConfig) -> tuple[frozenset[int], int | None]:
    """(the epochs a trial reports at for a decision, a cadence): the rungs, or every N epochs for the median rule."""
    if exp.search.scheduler.name == "median":
        return frozenset(), exp.search.report_every_epochs
    return frozenset(Schedule.of(exp).rungs), None


def rung_value(history: Sequence[Mapping[str, float]], rung: int, metric: str) -> float:
    """A trial's value at a rung: its row of that epoch (NaN if it has none)."""
    row = next((r for r in history if int(r.get("epoch", 0)) == rung), None)
    return float(row.get(metric, math.nan)) if row is not None else math.nan
