"""The whole lifecycle of one search: track, search, baseline, test once, log, register, promote."""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

from tunefleet.baseline import PARAMS as BASELINE_PARAMS
from tunefleet.candidates import Candidate
from tunefleet.errors import TunefleetError
from tunefleet.evaluation import SplitScores
from tunefleet.metrics import prefixed
from tunefleet.pipeline.baseline import baseline_of
from tunefleet.pipeline.figures import FigureData, FigureProcess
from tunefleet.pipeline.model_io import ModelPackage
from tunefleet.pipeline.registry import register_and_promote, registered_before
from tunefleet.pipeline.settings import RunOptions, TrackingSettings
from tunefleet.pipeline.store import check_server, connect
from tunefleet.pipeline.summary import PipelineSummary, test_and_lift_intervals
from tunefleet.pipeline.tracker import TAG_CHAMPION, MlflowTracker
from tunefleet.pipeline.warm_start import warm_start
from tunefleet.search import CheckedSearch, SearchResult, TrialRecord, run_checked
from tunefleet.search.importance import importances
from tunefleet.search.run import RunInputs


def run_pipeline(search: CheckedSearch, settings: TrackingSettings, opts: RunOptions | None = None) -> PipelineSummary:
    """Run the checked search with live MLflow logging, then test the best model once, register and gate it.

    The caller loads the data and checks the search (``check_search``) before the
    lifecycle's imports, so that a bad file, target column, cluster address or ``--resume``
    fails in about a second.

    What need not wait runs beside the main line: the store connects (MLflow's import,
    seconds) while Ray starts; the model log's imports load and the figures' child process
    imports matplotlib while trials train (the search fits the baseline beside them too); the test intervals'
    bootstrap runs while the model is logged, and the figures draw in that child while it
    is logged and registered.
    """
    opts = opts or RunOptions()
    started = time.perf_counter()
    exp, data = search.exp, search.data
    check_server(settings)  # an unreachable server fails here, in milliseconds
    model_name = (
        settings.model_name(exp.name, opts.model_name, opts.smoke) if opts.register else ""
    )  # a bad one fails now too
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="tunefleet") as pool:
        client, experiment = pool.submit(connect, settings), opts.experiment_name or settings.experiment_name(exp.name)
        tracker = MlflowTracker(settings, client, experiment, opts.command)
        warm = warm_start(tracker.client, exp, data, experiment) if opts.warm_start else ()
        with tracker.search_run(), closing(_Beside(pool, opts.verbose)) as beside:
            inputs = RunInputs((tracker, beside), opts.progress, warm=warm, verbose=opts.verbose)
            result = run_checked(search, inputs)
            if opts.warm_start:
                tracker.log_results({"warm_start_trials": float(len(warm))}, {"warm_start": "true"})
            summary = PipelineSummary.of(
                result, tracker.experiment_name or "", tracker.parent_id, settings.tracking_uri
            )
            assert result.baseline is not None
            baseline = baseline_of(result.baseline, data)  # logged even when no trial finished
            summary.baseline_metrics = baseline.metrics
            tracker.log_baseline(summary.baseline_metrics, BASELINE_PARAMS)
            best, champion, test = _best_and_test(result, tracker.parent_id)  # the one use of the test split
            with tempfile.TemporaryDirectory() as tmp:
                figures = beside.figures()  # drawn in a child, beside the steps below
                figures.draw(Path(tmp) / "plots", FigureData.of(result.trials, best, test, exp.metric, exp.mode))
                summary.record_best(best.trial_id, best.config.model_dump(mode="json"))
                summary.record_champion(result.verdict)  # type: ignore[arg-type]
                summary.val_metrics = prefixed(champion.val_metrics, "val")
                summary.test_metrics = test.metrics()
                intervals = pool.submit(test_and_lift_intervals, test, baseline, exp.search.seed)
                summary.record_importance(importances(exp, data.task, result.trials))
                figures.rank(summary.importance)
                package = ModelPackage.of(champion.bundle, data, exp.dataset.options.get("target"))
                # a resumed search reuses the model, and the gated version, it made for this trial before
                model_uri = tracker.log_model(package, Path(tmp), champion.key, reuse=search.resume)
                summary.test_intervals, summary.lift_intervals = intervals.result()
                tracker.log_results(summary.parent_metrics(), summary.parent_tags())
                if opts.register:  # while the figures still draw: it needs the logged model only
                    kept = registered_before(tracker, model_name, champion.key) if search.resume else None
                    summary.promotion = kept or register_and_promote(
                        tracker, model_uri, package, model_name,
                        metric=summary.gate_metric(), mode=exp.mode, test=test, split_hash=data.split_hash, baseline=baseline.test,
                        extra_tags={"dataset": exp.name, TAG_CHAMPION: champion.key, "champion_kind": champion.kind},
                    )  # fmt: skip
                tracker.log_plots(figures.paths())
    summary.wall_seconds = time.perf_counter() - started
    return summary


class _Beside:
    """What starts once the search runs, beside it: the figures' child process (it imports
    matplotlib while the trials train) and the imports the steps after the search first pay
    (after the tracker's own: two threads importing parts of MLflow at once can meet a
    half-imported module)."""

    def __init__(self, pool: ThreadPoolExecutor, verbose: bool) -> None:
        self.pool, self.verbose = pool, verbose
        self._figures: FigureProcess | None = None

    def on_search_start(self, *_: Any) -> None:
        self.figures()
        self.pool.submit(_prepare_logging)

    def on_trial_end(self, record: TrialRecord) -> None:
        pass

    def figures(self) -> FigureProcess:
        if self._figures is None:
            self._figures = FigureProcess(self.verbose)
        return self._figures

    def close(self) -> None:
        if self._figures is not None:
            self._figures.close()


def _prepare_logging() -> None:
    """Pay, while trials train, the imports that the steps after the search first pay: MLflow's
    pyfunc flavour (the model's log) and Optuna's importance evaluators (fANOVA's random
    forest: 0.15 s). They sat on the critical path after the search."""
    import importlib

    importlib.import_module("mlflow.pyfunc")
    importlib.import_module("optuna.importance")


def _best_and_test(result: SearchResult, parent_id: str) -> tuple[TrialRecord, Candidate, SplitScores]:
    """The best trial, the champion (a trial, an ensemble or the baseline) and the champion scored on
    the test split, or one line saying why there is none."""
    budget = result.experiment.search.time_budget_s
    if result.best is None and budget and not any(t.status == "failed" for t in result.trials):
        raise TunefleetError(
            f"no trial finished within --time-budget {budget:g} s ({result.counts()}); give it more seconds, "
            "or go on with --resume"
        )
    if result.best is None or result.verdict is None:
        errors = [t.error for t in result.trials if t.error]
        first = f"; first error: {errors[0][:200]}" if errors else ""
        raise TunefleetError(
            f"no trial finished ({result.counts()}){first}; every trial's error is tagged on the child runs "
            f"of MLflow run {parent_id}; fix the cause and rerun"
        )
    champion = result.verdict.champion
    return result.best, champion, SplitScores.of(champion.bundle, result.data, "test")
