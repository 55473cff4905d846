"""Member-level ASHA: one rung table that every cohort member reports to.

ASHA's rule (Li et al., 2020, as Ray Tune's ``ASHAScheduler`` applies it): at rung
epochs ``grace * eta**i``, a trial goes on only if its metric is in the top ``1/eta``
of every value recorded at that rung so far. Here the "trials" are cohort members, so
a weak member is stopped at a rung while its cohort mates go on, and the values come
from every cohort of the search (the ones running now, the ones that ended, and, after
``--resume``, the ones of the run that was interrupted: their histories refill the table).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only numpy at run time: the table's Ray actor imports this module alone
    from tunefleet.search.experiment import ExperimentConfig
    from tunefleet.search.result import TrialRecord


def rung_epochs(grace_period: int, reduction_factor: int, max_epochs: int) -> tuple[int, ...]:
    """The epochs at which ASHA decides: grace, grace*eta, ... below the last epoch."""
    rungs, rung = [], grace_period
    while rung < max_epochs:
        rungs.append(rung)
        rung *= reduction_factor
    return tuple(rungs)


class RungTable:
    """Values recorded at each rung, by trial id (a retried cohort re-reports, it does not add)."""

    def __init__(
        self, rungs: Iterable[int], reduction_factor: int, mode: str, values: dict[int, dict[str, float]] | None = None
    ) -> None:
        self.rungs = frozenset(rungs)
        self.reduction_factor, self.mode = reduction_factor, mode
        self.values: dict[int, dict[str, float]] = {r: dict((values or {}).get(r, {})) for r in self.rungs}

    def judge(self, trial_id: str, epoch: int, value: float) -> bool:
        """Record ``value`` at this epoch's rung; True when the member should stop here."""
        if epoch not in self.rungs or math.isnan(value):
            return False
        recorded = self.values[epoch]
        earlier = [v if self.mode == "max" else -v for t, v in recorded.items() if t != trial_id]
        recorded[trial_id] = value
        if not earlier:  # as Ray's ASHA: the cutoff comes from the values recorded before this one
            return False
        cutoff = np.percentile(np.array(earlier), (1 - 1 / self.reduction_factor) * 100)
        return bool((value if self.mode == "max" else -value) < cutoff)

    def merge(self, values: dict[int, dict[str, float]]) -> None:
        """Add the values a copy of this table recorded (a cohort that carried one)."""
        for epoch, recorded in values.items():
            self.values[epoch].update(recorded)

    def refill(self, records: Iterable[TrialRecord], metric: str) -> None:
        """Put the rung values of earlier trials (a resumed search's) back in the table."""
        for record in records:
            for row in record.history:
                epoch = int(row.get("epoch", 0))
                if epoch in self.rungs and metric in row:
                    self.values[epoch][record.trial_id] = float(row[metric])


def rung_table(exp: ExperimentConfig) -> RungTable | None:
    """The table for ``scheduler: asha``; None for ``none`` (members train to their own end)."""
    sched = exp.search.scheduler
    if sched.name == "none":
        return None
    rungs = rung_epochs(sched.grace_period, sched.reduction_factor, exp.space.max_epochs())
    return RungTable(rungs, sched.reduction_factor, exp.mode)
