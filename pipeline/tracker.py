"""``MlflowTracker``: the one writer to MLflow.

One parent run per search, one nested child run per trial and one for the baseline,
then the results, plots and model on the parent, and the registry version, alias and
tags. Everything is written from the driver (workers never talk to the tracking
server). A resumed search reuses its parent run and skips trials already logged (each
child is tagged with its trial id).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tunefleet.pipeline.lineage import EXPERIMENT_KIND_TAG, TRAINING_KIND, data_params, split_inputs
from tunefleet.pipeline.model_io import PYFUNC_FILE, ModelPackage, core_code, known_requirements, pinned_requirements
from tunefleet.pipeline.settings import TrackingSettings
from tunefleet.pipeline.store import (
    ctrl_c_held,
    exists_already,
    flatten,
    git_commit,
    log_batch,
    lost_store,
    numeric,
    raced_once,
)
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import TrialRecord
from tunefleet.splits import PreparedData

TAG_SEARCH = "tunefleet.search_name"
TAG_TRIAL = "tunefleet.trial_id"
TAG_ROLE = "tunefleet.role"
TAG_STATUS = "tunefleet.status"
TAG_PARAMS = "tunefleet.params"  # the sampled params (JSON), what --warm-start gives TPE back
TAG_OBJECTIVE = "tunefleet.objective."  # + metric name: the value TPE was told
TAG_LAST_REPORT = "tunefleet.last_report."  # + metric name: a stopped trial's [epoch, value], TPE's report of it
CURVE = "epoch/"  # + metric name: a trial's per-epoch curve (the plain name holds its result)
TAG_PROMOTION, TAG_REASON = "promotion", "promotion_reason"  # on a version: its alias when gated, and why
TAG_CHAMPION = "champion"  # on a logged model and its versions: what it is (a trial id, baseline, an ensemble's shares)
RUN_STATUS = {"finished": "FINISHED", "stopped": "FINISHED", "failed": "FAILED"}


class MlflowTracker:
    """SearchObserver for the trials, and every other MLflow write of a search or a promotion."""

    def __init__(
        self, settings: TrackingSettings, client: Any, experiment_name: str | None = None, command: str | None = None
    ) -> None:
        self.settings, self._client = settings, client
        self.experiment_name = experiment_name
        self.command = command or " ".join(sys.argv)
        self.experiment_id = ""
        self.parent_id = ""
        self.logged: set[str] = set()
        self.inputs: dict[str, Any] = {}
        self.metric = ""

    @property
    def client(self) -> Any:
        """The MlflowClient. It may be passed as a Future still connecting (the pipeline overlaps the
        store's start-up with Ray's); the first write waits for it, and that is before any trial starts."""
        if isinstance(self._client, Future):
            self._client = self._client.result()
        return self._client

    # -- the parent run -----------------------------------------------------------------
    @contextmanager
    def search_run(self) -> Iterator[MlflowTracker]:
        """Ends the parent run FINISHED, KILLED on Ctrl-C, or FAILED on any other exception
        (its trials stay; ``--resume`` goes on). A tracking server lost mid-search ends it in
        one line, the run left as it was."""
        try:
            yield self
        except BaseException as err:
            if (lost := lost_store(err, self.settings.tracking_uri)) is not None:  # --resume sets it RUNNING again
                raise lost from None
            self._end("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
            raise
        self._end("FINISHED")

    @ctrl_c_held()
    def _end(self, status: str) -> None:
        if self.parent_id:
            self.client.set_terminated(self.parent_id, status=status)

    def on_search_start(self, exp: ExperimentConfig, data: PreparedData, name: str, path: Path, resumed: bool) -> None:
        self.experiment_name = self.experiment_name or self.settings.experiment_name(exp.name)
        self.experiment_id = self._experiment(self.experiment_name)
        self.inputs = split_inputs(exp, data)
        self.metric = exp.metric
        existing = self._find_parent(name) if resumed else None
        if existing is not None:
            self.parent_id = existing
            self.logged = self._logged_trials()
            self.client.update_run(self.parent_id, status="RUNNING")
            return
        tags = {
            TAG_SEARCH: name,
            TAG_ROLE: "search",
            "dataset": exp.name,
            "split_hash": data.split_hash,
            "backend": exp.search.backend,
            "command": self.command[:5000],
            "task": data.task,
            **({"git_commit": commit} if (commit := git_commit()) else {}),
        }
        self.parent_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        params = flatten(exp.model_dump(include={"metric", "mode", "search", "threshold", "split", "train"}))
        params.update({**data_params(data), "data.storage_path": str(path)})
        log_batch(self.client, self.parent_id, params=params)
        raced_once(lambda: self.client.log_inputs(self.parent_id, datasets=list(self.inputs.values())))

    # -- child runs ----------------------------------------------------------------------
    @ctrl_c_held()
    def on_trial_end(self, record: TrialRecord) -> None:
        """The trial's child run: its result under each metric's name, its curves under ``epoch/<name>``.

        MLflow shows a metric's value at its highest step in the runs table and in run
        comparisons. With the curve under the result's own name (the result at step 0), the
        table showed the last epoch's value: for a trial whose kept epoch came before its
        last, not the value the search ranked it by, nor its model's.
        """
        if record.trial_id in self.logged or not self.parent_id:
            return
        tags = {TAG_TRIAL: record.trial_id, TAG_STATUS: record.status, "node_id": record.node_id or ""}
        if record.cohort:
            tags["cohort"] = record.cohort
        if record.status in ("finished", "stopped"):
            tags[TAG_PARAMS] = json.dumps(record.params)[:5000]
        if record.status == "finished":
            tags[TAG_OBJECTIVE + self.metric] = repr(record.metric(self.metric))
        elif record.status == "stopped" and record.history:  # --warm-start tells TPE of it as a pruned trial
            last = record.history[-1]
            tags[TAG_LAST_REPORT + self.metric] = json.dumps([int(last.get("epoch", 0)), last.get(self.metric)])
        if record.error:
            tags["error"] = record.error[:4000]
        run_id = self._child(f"trial-{record.trial_id}", "trial", tags)
        metrics: list[tuple[str, float, int]] = []
        charted = self.settings.curve_keys(self.metric)
        for row in record.history:
            step = int(row.get("epoch", 0))
            curve = numeric(row).items()
            metrics += [(CURVE + k, v, step) for k, v in curve if k != "epoch" and (charted is None or k in charted)]
        metrics += [(k, v, 0) for k, v in numeric(record.metrics).items() if k != "epoch"]
        metrics.append(("trial_seconds", record.seconds, 0))
        log_batch(self.client, run_id, metrics=metrics, params=flatten(record.config.model_dump(mode="json")))
        raced_once(lambda: self.client.log_inputs(run_id, datasets=[self.inputs["train"], self.inputs["val"]]))
        self.client.set_terminated(run_id, status=RUN_STATUS[record.status])
        self.logged.add(record.trial_id)

    def log_baseline(self, metrics: Mapping[str, float], params: Mapping[str, str]) -> None:
        """The baseline's sibling child run (once per search, also across --resume)."""
        if "baseline" in self.logged:
            return
        run_id = self._child("baseline-logreg", "baseline", {TAG_TRIAL: "baseline", "model": params["model"]})
        log_batch(self.client, run_id, metrics=[(k, v, 0) for k, v in metrics.items()], params=params)
        self.client.set_terminated(run_id)
        self.logged.add("baseline")

    # -- results on the parent -----------------------------------------------------------
    def log_results(self, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
        log_batch(self.client, self.parent_id, metrics=[(k, v, 0) for k, v in metrics.items()], tags=tags)

    def log_plots(self, paths: list[Path]) -> None:
        for path in paths:
            self.client.log_artifact(self.parent_id, str(path), artifact_path="plots")

    def log_model(self, package: ModelPackage, workdir: Path, champion: str, reuse: bool = False) -> str:
        """The bundle as an MLflow pyfunc ("models from code") on the parent run; its ``models:/`` URI.

        ``reuse`` (a resumed search): the model this parent run logged for the same champion
        (``champion``: :attr:`tunefleet.candidates.Candidate.key`) before, if there is one,
        instead of a second copy of it.
        """
        import mlflow

        if reuse and (earlier := self._logged_model(champion)):
            return earlier
        bundle_dir = package.bundle.save(workdir / "bundle")
        with mlflow.start_run(run_id=self.parent_id), known_requirements():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_FILE),
                artifacts={"bundle": str(bundle_dir)},
                code_paths=[str(core_code(workdir))],
                signature=package.signature(),
                input_example=package.example,
                pip_requirements=pinned_requirements(),
                metadata=package.metadata(),
                tags={TAG_CHAMPION: champion},
            )
        return str(info.model_uri)

    # -- registry ------------------------------------------------------------------------
    def register(self, model_uri: str, name: str, tags: Mapping[str, str]) -> str:
        """A new version of ``name`` from ``models:/<model_id>``; its version number.

        Through the client rather than ``mlflow.register_model``, which prints
        "Successfully registered model ..." lines of its own.
        """
        try:
            self.client.create_registered_model(name)
        except Exception as err:  # a name registered before: every search after the first
            if not exists_already(err):
                raise
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else None
        mv = self.client.create_model_version(
            name, source=model_uri, run_id=self.parent_id, tags=dict(tags), model_id=model_id
        )
        return str(mv.version)

    def set_alias(
        self, name: str, version: str, alias: str, reason: str, figures: Mapping[str, str] | None = None
    ) -> None:
        """Point ``alias`` at ``version`` and say why on the version (and on the search run, if any)."""
        self.client.set_registered_model_alias(name, alias, version)
        for key, value in {TAG_PROMOTION: alias, TAG_REASON: reason[:4000], **(figures or {})}.items():
            self.client.set_model_version_tag(name, version, key, value)
        if self.parent_id:
            log_batch(self.client, self.parent_id, tags={"registered_model": f"{name}/{version}", "alias": alias})

    # -- helpers -------------------------------------------------------------------------
    def _child(self, name: str, role: str, tags: Mapping[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={"mlflow.parentRunId": self.parent_id, TAG_ROLE: role, **tags}
        )
        return str(run.info.run_id)

    def _logged_model(self, champion: str) -> str | None:
        """The ``models:/`` URI of the model this parent run logged for ``champion``, if it logged one."""
        for model in self.client.search_logged_models([self.experiment_id]):
            if model.source_run_id == self.parent_id and (model.tags or {}).get(TAG_CHAMPION) == champion:
                return f"models:/{model.model_id}"
        return None

    def _experiment(self, name: str) -> str:
        """Find or create the experiment, marked as model training for MLflow 3's UI."""
        found = raced_once(lambda: self.client.get_experiment_by_name(name) or self._new_experiment(name))
        exp_id = str(found.experiment_id)
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(exp_id)
        if found.tags.get(EXPERIMENT_KIND_TAG) != TRAINING_KIND:
            self.client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
        return exp_id

    def _new_experiment(self, name: str) -> Any:
        return self.client.get_experiment(
            self.client.create_experiment(name, artifact_location=self.settings.artifact_uri())
        )

    def _find_parent(self, name: str) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG_SEARCH}` = '{name}' and tags.`{TAG_ROLE}` = 'search'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def _logged_trials(self) -> set[str]:
        """The trials this parent run logged whole. A child run still RUNNING was cut off
        between its creation and its end (a killed driver): it is deleted, and logged again."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_id}'", max_results=50000
        )
        logged = set()
        for run in runs:
            if TAG_TRIAL not in run.data.tags:
                continue
            if run.info.status == "RUNNING":
                self.client.delete_run(run.info.run_id)
            else:
                logged.add(run.data.tags[TAG_TRIAL])
        return logged
