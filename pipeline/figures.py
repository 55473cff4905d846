"""The search's figures, on the driver's side: their numbers, and the child process that draws them.

The drawing (:mod:`tunefleet.pipeline.drawing`) runs in a child started with the search: it
imports matplotlib while the trials train, and draws on a core of its own while the
driver tests, logs and registers the chosen model. The driver's interpreter lock is the
32-trial search's critical path after its last cohort (the child runs, the steps after
the search), and in the driver the figures took ~1.1 CPU-s of it, matplotlib's import
another ~0.5.

This module imports numpy only: the child reads :class:`FigureData` from it.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from tunefleet.errors import TunefleetError, last_line

if TYPE_CHECKING:
    from tunefleet.evaluation import SplitScores
    from tunefleet.search.result import TrialRecord

Ranking = dict[str, dict[str, float]]  # importance evaluator -> hyperparameter -> share


@dataclass(frozen=True)
class TrialPoint:
    """What the history and parallel-coordinates figures read of one trial."""

    value: float  # the search metric (NaN: failed)
    status: str
    params: dict[str, Any]


def _drawn(t: TrialRecord) -> dict[str, Any]:
    """What the parallel coordinates draw, read from the config each trial trained with: Adam's
    and SGD's learning rates are sampled under two names but train as one ``lr``."""
    c = t.config
    return {
        "lr": c.lr, "batch_size": c.batch_size, "n_layers": len(c.hidden_widths),
        "epochs": c.epochs, "weight_decay": c.weight_decay,
    }  # fmt: skip


@dataclass(frozen=True)
class FigureData:
    """Every number the figures show, picklable with numpy alone; the test split's as scored once."""

    metric: str
    mode: str
    best_id: str
    best_epoch: float
    history: list[dict[str, float]]  # the best trial's epoch rows
    trials: list[TrialPoint]
    y: np.ndarray  # test codes
    proba: np.ndarray  # test probabilities, a column per class
    confusion: np.ndarray  # rows true, columns predicted
    labels: tuple[str, ...]
    roc: tuple[np.ndarray, np.ndarray] | None  # (false positive rate, true positive rate); binary only
    pr: tuple[np.ndarray, np.ndarray] | None  # (recall, precision); binary only
    threshold: float | None  # the bundle's decision threshold; binary only

    @classmethod
    def of(cls, trials: list[TrialRecord], best: TrialRecord, test: SplitScores, metric: str, mode: str) -> FigureData:
        bundle = test.bundle
        roc = pr = None
        if bundle.task == "binary":
            from sklearn.metrics import precision_recall_curve, roc_curve  # loaded in the driver already

            fpr, tpr, _ = roc_curve(test.y, test.proba[:, 1])
            precision, recall, _ = precision_recall_curve(test.y, test.proba[:, 1])
            roc, pr = (fpr, tpr), (recall, precision)
        return cls(
            metric=metric,
            mode=mode,
            best_id=best.trial_id,
            best_epoch=float(best.metrics.get("best_epoch", math.nan)),
            history=list(best.history),
            trials=[TrialPoint(t.metric(metric), t.status, _drawn(t)) for t in trials],
            y=test.y,
            proba=test.proba,
            confusion=test.confusion(),
            labels=tuple(str(x) for x in bundle.class_labels),
            roc=roc,
            pr=pr,
            threshold=bundle.decision_threshold if roc is not None else None,
        )


class FigureProcess:
    """The child that draws the figures (``python -m tunefleet.pipeline.drawing``): started early, sent the
    figures' numbers (:meth:`draw`), then the importance ranking (:meth:`rank`), and read once
    for the files it made (:meth:`paths`)."""

    def __init__(self, verbose: bool = False) -> None:
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tunefleet.pipeline.drawing"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if verbose else self._stderr,
        )

    def draw(self, out: Path, data: FigureData) -> None:
        """The child draws these figures into ``out`` now."""
        self._send((out, data))

    def rank(self, ranked: Ranking | None) -> None:
        """The child draws the importance figure (and writes its table) after the others."""
        assert self.proc.stdin is not None
        self._send(ranked)
        self.proc.stdin.close()

    def paths(self) -> list[Path]:
        """Every file the child made (waits for it to end)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if not self.proc.stdin.closed:
            self.rank(None)
        answer = self.proc.stdout.read()
        if self.proc.wait() != 0 or not answer:
            self._failed()
        paths: list[Path] = pickle.loads(answer)
        return paths

    def close(self) -> None:
        """End the child if it still runs (the search failed before its figures), and its error file."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()

    def _send(self, message: Any) -> None:
        assert self.proc.stdin is not None
        try:
            pickle.dump(message, self.proc.stdin)
            self.proc.stdin.flush()
        except OSError:  # the child is gone: its error says why
            self.proc.wait()
            self._failed()

    def _failed(self) -> None:
        self._stderr.seek(0)
        why = last_line(self._stderr.read().decode(errors="replace")) or f"exit code {self.proc.returncode}"
        raise TunefleetError(f"drawing the search's figures failed: {why}; rerun with --verbose to see all of it")
