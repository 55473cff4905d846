"""What one ``tunefleet search`` did: the summary table it prints and the ``--json`` file."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from tunefleet.candidates import Verdict
from tunefleet.evaluation import SplitScores
from tunefleet.intervals import LEVEL, Interval, metric_and_lift_intervals, scorer_for
from tunefleet.metrics import lift
from tunefleet.pipeline.baseline import Baseline
from tunefleet.pipeline.registry import MANY_DECISIONS, Promotion
from tunefleet.search import SearchResult
from tunefleet.search.importance import Importance, top

ENDS = ("low", "high")


@dataclass
class PipelineSummary:
    """What one `tunefleet search` did; ``as_json`` is the --json file."""

    dataset: str
    experiment: str
    parent_run_id: str
    search_name: str
    counts: dict[str, int]
    metric: str
    mode: str
    best_trial: str | None = None
    best_config: dict[str, Any] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    test_intervals: dict[str, Interval] = field(default_factory=dict)  # "test_accuracy" -> 95% bootstrap
    lift_intervals: dict[str, Interval] = field(default_factory=dict)  # "accuracy" -> paired 95% bootstrap
    importance: dict[str, dict[str, float]] = field(default_factory=dict)  # evaluator -> param -> share
    importance_note: str | None = None  # why there is none
    importance_basis: str = ""  # which trials' values at which rung (or the end) were ranked
    promotion: Promotion | None = None
    split_hash: str = ""
    wall_seconds: float = 0.0
    tracking_uri: str = ""
    first_error: str | None = None  # of the first failed trial: why, in the table, not only in MLflow
    cv_folds: int = 1  # > 1: validation metrics are out-of-fold, the champion averages its fold models
    champion: dict[str, Any] = field(default_factory=dict)  # kind, key, description: what was tested and registered
    candidates: list[dict[str, Any]] = field(default_factory=list)  # each candidate's validation value
    trials: list[dict[str, Any]] = field(default_factory=list)  # every trial: id, status, epochs, value

    @classmethod
    def of(cls, result: SearchResult, experiment: str, parent_run_id: str, tracking_uri: str) -> PipelineSummary:
        exp = result.experiment
        return cls(
            exp.name,
            experiment,
            parent_run_id,
            result.name,
            result.counts(),
            exp.metric,
            exp.mode,
            split_hash=result.data.split_hash,
            tracking_uri=tracking_uri,
            first_error=next((t.error for t in result.trials if t.status == "failed" and t.error), None),
            cv_folds=len(result.data.folds) or 1,
            trials=[
                {
                    "id": t.trial_id,
                    "status": t.status,
                    "epochs": len(t.history),
                    exp.metric: t.metric(exp.metric),
                    "params": t.params,
                }
                for t in sorted(result.trials, key=lambda t: t.trial_id)
            ],
        )

    def val_test_gap(self) -> float | None:
        """The search metric's validation value minus its test value: selection optimism, roughly."""
        name = self.metric.removeprefix("val_")
        val, test = self.val_metrics.get(f"val_{name}"), self.test_metrics.get(f"test_{name}")
        return None if val is None or test is None else val - test

    def record_best(self, trial_id: str, config: dict[str, Any]) -> None:
        self.best_trial, self.best_config = trial_id, config

    def record_champion(self, verdict: Verdict) -> None:
        """What the search hands over, and what it was chosen from (each on the validation rows)."""
        name = self.metric.removeprefix("val_")
        champion = verdict.champion
        self.champion = {"kind": champion.kind, "key": champion.key, "description": champion.describe()}
        self.candidates = [
            {"kind": c.kind, "name": c.name, self.metric: c.val_metrics.get(name)}
            for c in verdict.candidates
            if c.kind != "trial" or c.name == self.best_trial
        ]

    def record_importance(self, found: Importance) -> None:
        self.importance, self.importance_basis, self.importance_note = found.shares, found.basis, found.note

    def parent_metrics(self) -> dict[str, float]:
        """What the parent run gets: best trial's validation, test and baseline metrics, intervals, importance."""
        return {
            **{f"best_{k}": v for k, v in self.val_metrics.items()},
            **self.test_metrics,
            **{f"baseline_{k}": v for k, v in self.baseline_metrics.items() if k.startswith("test_")},
            **{f"trials_{k}": float(v) for k, v in self.counts.items()},
            **{f"importance_{ev}_{p}": v for ev, shares in self.importance.items() for p, v in shares.items()},
            **{
                f"{k}_ci_{end}": v
                for k, i in self.test_intervals.items()
                for end, v in zip(ENDS, i.as_list(), strict=True)
            },
            **{
                f"lift_{k}_ci_{end}": v
                for k, i in self.lift_intervals.items()
                for end, v in zip(ENDS, i.as_list(), strict=True)
            },
        }

    def parent_tags(self) -> dict[str, str]:
        return {
            "best_trial_id": self.best_trial or "",
            "best_config": json.dumps(self.best_config)[:5000],
            "champion": self.champion.get("key", "")[:5000],
            "champion_kind": self.champion.get("kind", ""),
            **({"importance_basis": self.importance_basis} if self.importance else {}),
        }

    def _lift(self, name: str) -> float:
        return lift(
            self.test_metrics.get(f"test_{name}", math.nan), self.baseline_metrics.get(f"test_{name}", math.nan), name
        )

    def baseline_verdict(self) -> str | None:
        """One plain line when the baseline is as good as the tuned model on the search's metric."""
        name = self.metric.removeprefix("val_")
        interval = self.lift_intervals.get(name)
        if interval is None or interval.low > 0:
            return None
        how = "better" if interval.high < 0 else "as good"
        return (
            f"the logistic-regression baseline is {how} on test {name}: lift {self._lift(name):+.4f}, "
            f"95% interval [{interval.low:+.4f}, {interval.high:+.4f}] {'is below' if interval.high < 0 else 'includes'} 0"
        )

    def gate_metric(self) -> str:
        return "test_" + self.metric.removeprefix("val_")

    def as_json(self) -> dict[str, Any]:
        p = self.promotion
        return {
            "dataset": self.dataset,
            "experiment": self.experiment,
            "parent_run_id": self.parent_run_id,
            "search_name": self.search_name,
            "trials": self.counts,
            "first_error": self.first_error,
            "cv_folds": self.cv_folds,
            "val_test_gap": self.val_test_gap(),
            "metric": self.metric,
            "mode": self.mode,
            "best_trial": self.best_trial,
            "best_config": self.best_config,
            "champion": self.champion,
            "candidates": self.candidates,
            "val_metrics": self.val_metrics,
            "test_metrics": self.test_metrics,
            "baseline_metrics": self.baseline_metrics,
            "test_intervals": {k: i.as_list() for k, i in self.test_intervals.items()},
            "lifts": {
                name: {"value": self._lift(name), "interval": i.as_list()} for name, i in self.lift_intervals.items()
            },
            "interval_level": LEVEL,
            "importance": self.importance,
            "importance_basis": self.importance_basis,
            "split_hash": self.split_hash,
            "registered_model": p.name if p else None,
            "model_version": p.version if p else None,
            "alias": p.alias if p else None,
            "promotion_reason": p.reason if p else None,
            "model_uri": p.uri if p else None,
            "split_decisions": p.split_decisions if p else None,
            "tracking_uri": self.tracking_uri,
            "wall_seconds": self.wall_seconds,
            "trial_list": self.trials,
        }


def test_and_lift_intervals(
    test: SplitScores, baseline: Baseline, seed: int
) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """95% stratified bootstrap intervals of every test metric, and paired ones of every lift over the baseline."""
    task = test.bundle.task
    other = baseline.test
    ours, theirs = scorer_for(task, test.bundle.decision_threshold), scorer_for(task, other.bundle.decision_threshold)
    metrics, lifts = metric_and_lift_intervals(ours, theirs, test.y, test.proba, other.proba, seed=seed)
    return {f"test_{k}": v for k, v in metrics.items() if k != "loss"}, {k: v for k, v in lifts.items() if k != "loss"}


def _cell(value: float, interval: Interval | None, signed: bool = False) -> str:
    number = f"{value:+.4f}" if signed else f"{value:.4f}"
    if interval is None:
        return number
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{number} [{fmt.format(interval.low)}, {fmt.format(interval.high)}]"


def reuse_warning(split_hash: str, decisions: int) -> str:
    """Past :data:`MANY_DECISIONS` gate decisions on one split, its test rows have picked a winner among
    many: the champion's test value is optimistic, and the remedy is fresh test rows."""
    return (
        f"caution      split {split_hash}'s test rows have now decided {decisions} gates: the champion's test "
        "value is optimistic (the winner's curse); test on fresh rows: a new split seed "
        "(--set split.seed=N) or more data"
    )


def format_summary(s: PipelineSummary) -> str:
    """The end-of-search summary table (test and lift with their 95% intervals)."""
    lines = [
        "",
        f"== {s.dataset}: {sum(s.counts.values())} trials ({', '.join(f'{v} {k}' for k, v in s.counts.items())}) "
        f"in {s.wall_seconds:.1f} s, split {s.split_hash}",
        *([f"failures     {s.counts.get('failed', 0)} trials; the first: {s.first_error}"] if s.first_error else []),
        f"best trial   {s.best_trial}: {json.dumps(s.best_config)}",
        f"champion     {s.champion.get('description', '-')}   (chosen on validation {s.metric.removeprefix('val_')}: "
        + ", ".join(f"{c['name']} {c[s.metric]:.4f}" for c in s.candidates if isinstance(c.get(s.metric), float))
        + ")",
        *(
            [
                f"cv           {s.cv_folds} folds: validation = out-of-fold predictions of the train + validation "
                "rows; a trial's model averages its fold models"
            ]
            if s.cv_folds > 1
            else []
        ),
        f"{'metric':<18}{'validation':>11}  {'test [95% interval]':<26}{'baseline':>9}  {'lift [95% paired interval]':<28}",
    ]
    for key in sorted(s.test_metrics):
        name = key.removeprefix("test_")
        if name == "loss":
            continue  # same as log_loss
        val = s.val_metrics.get(f"val_{name}", math.nan)
        test = s.test_metrics[key]
        base = s.baseline_metrics.get(key, math.nan)
        test_cell = _cell(test, s.test_intervals.get(key))
        lift_cell = _cell(lift(test, base, name), s.lift_intervals.get(name), signed=True)
        lines.append(f"{name:<18}{val:>11.4f}  {test_cell:<26}{base:>9.4f}  {lift_cell}")
    lines.append("(lift > 0: the tuned model is better on test; intervals: stratified bootstrap of the test rows)")
    verdict = s.baseline_verdict()
    if verdict:
        lines.append(verdict)
    fanova = s.importance.get("fanova")
    if fanova:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in top(fanova))
        lines.append(f"importance   {shares}   (fANOVA, top 3, on {s.importance_basis})")
    elif s.importance_note:
        lines.append(f"importance   none: {s.importance_note}")
    if s.promotion:
        p = s.promotion
        lines += [
            f"registered   {p.name} version {p.version} -> alias '{p.alias}' ({p.reason})",
            *([reuse_warning(s.split_hash, p.split_decisions)] if p.split_decisions > MANY_DECISIONS else []),
            f'load it      mlflow.pyfunc.load_model("{p.uri}")   (MLFLOW_TRACKING_URI={s.tracking_uri})',
            f"predict      tunefleet predict {shlex.quote(p.uri)} --input rows.csv",
        ]
    lines.append(f"browse       tunefleet ui   (experiment {s.experiment}, run {s.parent_run_id})")
    return "\n".join(lines)
