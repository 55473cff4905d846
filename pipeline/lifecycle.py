"""The whole lifecycle of one search: track, search, baseline, test once, log, register, promote."""

from __future__ import annotations

import json
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import tunefleet
from pipeline import plots
from pipeline.baseline import logistic_baseline
from pipeline.registry import Promotion, register_and_promote
from pipeline.settings import TrackingSettings
from pipeline.tracking import MlflowTracker, connect, log_batch, numeric
from search import ExperimentConfig, SearchResult, run_search
from tunefleet.errors import TunefleetError
from tunefleet.metrics import metric_mode
from tunefleet.train import evaluate, evaluate_confusion, raw_features

PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
TUNEFLEET_SRC = Path(tunefleet.__file__).resolve().parent
PINNED = ("mlflow", "torch", "numpy", "pandas", "pydantic", "pyyaml")


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


def pinned_requirements() -> list[str]:
    """Exact versions of what loading the model needs (inferring them costs 3-5 s per model)."""
    out = []
    for pkg in PINNED:
        try:
            out.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            out.append(pkg)
    return out


def _example(result: SearchResult, n: int = 5) -> pd.DataFrame:
    X = raw_features(result.data, "test")[:n].astype(np.float64)
    return pd.DataFrame(X, columns=list(result.data.feature_names))


def input_schema(feature_names: tuple[str, ...]) -> Any:
    """One required, any-typed column per training feature (why: see pipeline/pyfunc_model.py)."""
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    return Schema([ColSpec(AnyType(), name, required=True) for name in feature_names])


def _signature(result: SearchResult, expected: pd.DataFrame) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.utils import _infer_schema

    with warnings.catch_warnings():  # integer labels: the output has no missing values to worry about
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        outputs = _infer_schema(expected)
    return ModelSignature(inputs=input_schema(result.data.feature_names), outputs=outputs)


def _log_model(tracker: MlflowTracker, result: SearchResult, workdir: Path) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    import mlflow

    assert result.best_bundle is not None
    bundle_dir = result.best_bundle.save(workdir / "bundle")
    example = _example(result)
    expected = result.best_bundle.predict_table(example)
    with mlflow.start_run(run_id=tracker.parent_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_FILE),
            artifacts={"bundle": str(bundle_dir)},
            code_paths=[str(TUNEFLEET_SRC)],
            signature=_signature(result, expected),
            input_example=example,
            pip_requirements=pinned_requirements(),
            metadata={
                "feature_names": list(result.data.feature_names),
                "class_labels": list(result.data.class_labels),
                "target": result.experiment.dataset.options.get("target"),
            },
        )
    return str(info.model_uri), example, expected


def _log_plots(tracker: MlflowTracker, result: SearchResult, exp: ExperimentConfig, workdir: Path) -> None:
    assert result.best is not None and result.best_bundle is not None
    X_test = raw_features(result.data, "test")
    cm = evaluate_confusion(result.best_bundle, X_test, result.data.y_test)
    for path in plots.make_all(
        workdir / "plots",
        result.trials,
        result.best,
        result.best_bundle,
        exp.metric,
        exp.mode,
        X_test,
        result.data.y_test,
        cm,
    ):
        tracker.client.log_artifact(tracker.parent_id, str(path), artifact_path="plots")


def run_pipeline(
    exp: ExperimentConfig,
    settings: TrackingSettings,
    *,
    name: str | None = None,
    resume: bool = False,
    address: str | None = None,
    experiment_name: str | None = None,
    model_name: str | None = None,
    register: bool = True,
    progress: bool = True,
    command: str | None = None,
    verbose: bool = False,
) -> PipelineSummary:
    """Search with live MLflow logging, then test the best model once, register and gate it."""
    started = time.perf_counter()
    client = connect(settings)  # fail before any trial if the store is unreachable
    data = exp.load()  # once, on the driver; run_search shares it with every trial
    tracker = MlflowTracker(settings, client, experiment_name, command)
    result = run_search(
        exp,
        data=data,
        name=name,
        resume=resume,
        address=address,
        observers=[tracker],
        progress=progress,
        verbose=verbose,
    )
    summary = PipelineSummary(
        exp.name,
        tracker.experiment_name or settings.experiment_name(exp.name),
        tracker.parent_id,
        result.name,
        result.counts(),
        exp.metric,
        exp.mode,
        split_hash=data.split_hash,
        tracking_uri=settings.tracking_uri,
    )
    try:
        summary.baseline_metrics = logistic_baseline(exp, data)
        if "baseline" not in tracker.logged:
            run_id = tracker.child_run(
                "baseline-logreg", "baseline", {"tunefleet.trial_id": "baseline", "model": "sklearn LogisticRegression"}
            )
            log_batch(
                client,
                run_id,
                metrics=[(k, v, 0) for k, v in summary.baseline_metrics.items()],
                params={"model": "LogisticRegression", "max_iter": "2000"},
            )
            client.set_terminated(run_id)
        if result.best is None or result.best_bundle is None:
            errors = [t.error for t in result.trials if t.error]
            first = f"; first error: {errors[0][:200]}" if errors else ""
            raise TunefleetError(
                f"no trial finished ({summary.counts}){first}; every trial's error is tagged on the child runs "
                f"of MLflow run {tracker.parent_id}; fix the cause and rerun"
            )
        best = result.best
        summary.best_trial = best.trial_id
        summary.best_config = {
            k: v for k, v in best.train_config.items() if k not in {"dataset", "dataset_options", "split"}
        }
        summary.val_metrics = {k: v for k, v in numeric(best.metrics).items() if k.startswith("val_")}
        # the one and only use of the test split: the chosen model
        summary.test_metrics = evaluate(result.best_bundle, raw_features(data, "test"), data.y_test)
        log_batch(
            client,
            tracker.parent_id,
            metrics=[(f"best_{k}", v, 0) for k, v in summary.val_metrics.items()]
            + [(k, v, 0) for k, v in summary.test_metrics.items()]
            + [(f"baseline_{k}", v, 0) for k, v in summary.baseline_metrics.items() if k.startswith("test_")]
            + [(f"trials_{k}", float(v), 0) for k, v in summary.counts.items()],
            tags={"best_trial_id": best.trial_id, "best_config": json.dumps(summary.best_config)[:5000]},
        )
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            _log_plots(tracker, result, exp, workdir)
            model_uri, example, expected = _log_model(tracker, result, workdir)
        if register:
            gate_metric = summary.gate_metric()
            summary.promotion = register_and_promote(
                client,
                settings,
                model_uri,
                model_name or settings.model_name(exp.name),
                tracker.parent_id,
                metric=gate_metric,
                mode=exp.mode,
                value=summary.test_metrics[gate_metric],
                split_hash=data.split_hash,
                example=example,
                expected=expected,
                extra_tags={"dataset": exp.name, "best_trial_id": best.trial_id},
            )
            client.set_tag(
                tracker.parent_id, "registered_model", f"{summary.promotion.name}/{summary.promotion.version}"
            )
            client.set_tag(tracker.parent_id, "alias", summary.promotion.alias)
    except BaseException:
        tracker.finish("FAILED")  # the trials stay logged; --resume picks the search up again
        raise
    tracker.finish("FINISHED")
    summary.wall_seconds = time.perf_counter() - started
    return summary


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
        lift = base - test if metric_mode(name) == "min" else test - base
        lines.append(f"{name:<22}{val:>12.4f}{test:>10.4f}{base:>10.4f}{lift:>+9.4f}")
    if s.promotion:
        p = s.promotion
        lines += [
            f"registered   {p.name} version {p.version} -> alias '{p.alias}' ({p.reason})",
            f'load it      mlflow.pyfunc.load_model("{p.uri}")   (MLFLOW_TRACKING_URI={s.tracking_uri})',
            f"predict      tunefleet predict {p.uri} --input rows.csv",
        ]
    lines.append(f"browse       tunefleet ui   (experiment {s.experiment}, run {s.parent_run_id})")
    return "\n".join(lines)
