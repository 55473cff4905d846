"""What one ``tunefleet search`` did: the summary table it prints and the ``--json`` file."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from pipeline.registry import Promotion
from search import SearchResult
from tunefleet.metrics import lift


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
    promotion: Promotion | None = None
    split_hash: str = ""
    wall_seconds: float = 0.0
    tracking_uri: str = ""

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
        )

    def record_best(self, trial_id: str, config: dict[str, Any]) -> None:
        self.best_trial, self.best_config = trial_id, config

    def parent_metrics(self) -> dict[str, float]:
        """What the parent run gets: the best trial's validation, the test, the baseline's test metrics."""
        return {
            **{f"best_{k}": v for k, v in self.val_metrics.items()},
            **self.test_metrics,
            **{f"baseline_{k}": v for k, v in self.baseline_metrics.items() if k.startswith("test_")},
            **{f"trials_{k}": float(v) for k, v in self.counts.items()},
        }

    def parent_tags(self) -> dict[str, str]:
        return {"best_trial_id": self.best_trial or "", "best_config": json.dumps(self.best_config)[:5000]}

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
            "metric": self.metric,
            "mode": self.mode,
            "best_trial": self.best_trial,
            "best_config": self.best_config,
            "val_metrics": self.val_metrics,
            "test_metrics": self.test_metrics,
            "baseline_metrics": self.baseline_metrics,
            "split_hash": self.split_hash,
            "registered_model": p.name if p else None,
            "model_version": p.version if p else None,
            "alias": p.alias if p else None,
            "promotion_reason": p.reason if p else None,
            "model_uri": p.uri if p else None,
            "tracking_uri": self.tracking_uri,
            "wall_seconds": self.wall_seconds,
        }


def format_summary(s: PipelineSummary) -> str:
    """The end-of-search summary table."""
    lines = [
        "",
        f"== {s.dataset}: {sum(s.counts.values())} trials ({', '.join(f'{v} {k}' for k, v in s.counts.items())}) "
        f"in {s.wall_seconds:.1f} s, split {s.split_hash}",
        f"best trial   {s.best_trial}: {json.dumps(s.best_config)}",
        f"{'metric':<22}{'validation':>12}{'test':>10}{'baseline':>10}{'lift':>9}   (lift > 0: tuned model better on test)",
    ]
    for key in sorted(s.test_metrics):
        name = key.removeprefix("test_")
        if name == "loss":
            continue  # same as log_loss
        val = s.val_metrics.get(f"val_{name}", math.nan)
        test = s.test_metrics[key]
        base = s.baseline_metrics.get(key, math.nan)
        lines.append(f"{name:<22}{val:>12.4f}{test:>10.4f}{base:>10.4f}{lift(test, base, name):>+9.4f}")
    if s.promotion:
        p = s.promotion
        lines += [
            f"registered   {p.name} version {p.version} -> alias '{p.alias}' ({p.reason})",
            f'load it      mlflow.pyfunc.load_model("{p.uri}")   (MLFLOW_TRACKING_URI={s.tracking_uri})',
            f"predict      tunefleet predict {p.uri} --input rows.csv",
        ]
    lines.append(f"browse       tunefleet ui   (experiment {s.experiment}, run {s.parent_run_id})")
    return "\n".join(lines)
