"""A new SQLite tracking store seeded from a migrated template is the store MLflow would have made."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_trial_run_shows_its_result_and_keeps_its_curve_apart(tmp_path, monkeypatch) -> None:
    """MLflow's runs table and comparisons show a metric's value at its highest step: a trial
    whose kept epoch (2) came before its last (3) must show the kept epoch's value, the one
    the search ranked it by; its per-epoch curve is under ``epoch/<name>``."""
    from mlflow import MlflowClient

    from tunefleet.pipeline.settings import TrackingSettings
    from tunefleet.pipeline.store import connect
    from tunefleet.pipeline.tracker import CURVE, MlflowTracker
    from tunefleet.search.experiment import load_experiment
    from tunefleet.search.result import TrialRecord
    from tunefleet.train_config import TrainConfig

    monkeypatch.chdir(tmp_path)
    exp = load_experiment("sign", smoke=True)
    data = exp.load()
    settings = TrackingSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    tracker = MlflowTracker(settings, connect(settings), "curves")
    tracker.on_search_start(exp.model_copy(update={"metric": "val_roc_auc", "mode": "max"}), data, "s", tmp_path, False)
    losses, curve = [0.5, 0.4, 0.45], [0.80, 0.90, 0.95]  # epoch 2 has the lowest loss: the kept one
    history = [
        {"epoch": e + 1.0, "val_loss": loss, "val_roc_auc": v}
        for e, (loss, v) in enumerate(zip(losses, curve, strict=True))
    ]
    kept = {"val_loss": 0.4, "val_roc_auc": 0.90, "best_epoch": 2.0, "epochs_run": 3.0}
    tracker.on_trial_end(TrialRecord("t1", {"lr": 0.01}, TrainConfig(), "finished", metrics=kept, history=history))

    client = MlflowClient(settings.tracking_uri)
    child = client.search_runs([tracker.experiment_id], f"tags.`mlflow.parentRunId` = '{tracker.parent_id}'")[0]
    assert child.data.metrics["val_roc_auc"] == 0.90 and child.data.metrics["best_epoch"] == 2.0
    assert child.data.tags["tunefleet.objective.val_roc_auc"] == repr(0.90)
    points = client.get_metric_history(child.info.run_id, CURVE + "val_roc_auc")
    assert sorted((m.step, m.value) for m in points) == [(1, 0.80), (2, 0.90), (3, 0.95)]
    assert [m.step for m in client.get_metric_history(child.info.run_id, "val_roc_auc")] == [0]


@pytest.mark.parametrize("curves", ["main", "all"])
def test_a_trial_run_charts_the_configured_curves_and_every_result(tmp_path, monkeypatch, curves) -> None:
    """``curves: main`` (the default) charts the losses and the search's metric per epoch;
    ``all`` every key of the epoch's row. The results at the kept epoch are logged either way."""
    from mlflow import MlflowClient

    from tunefleet.pipeline.settings import TrackingSettings
    from tunefleet.pipeline.store import connect
    from tunefleet.pipeline.tracker import CURVE, MlflowTracker
    from tunefleet.search.experiment import load_experiment
    from tunefleet.search.result import TrialRecord
    from tunefleet.train_config import TrainConfig

    monkeypatch.chdir(tmp_path)
    exp = load_experiment("sign", smoke=True).model_copy(update={"metric": "val_roc_auc", "mode": "max"})
    data = exp.load()
    settings = TrackingSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}", curves=curves)
    tracker = MlflowTracker(settings, connect(settings), "curves")
    tracker.on_search_start(exp, data, "s", tmp_path, False)
    row = {"train_loss": 0.6, "val_loss": 0.5, "val_log_loss": 0.5, "val_roc_auc": 0.9, "val_accuracy": 0.8}
    history = [{"epoch": e + 1.0, **row} for e in range(3)]
    tracker.on_trial_end(TrialRecord("t1", {"lr": 0.01}, TrainConfig(), "finished", metrics=row, history=history))

    child = MlflowClient(settings.tracking_uri).search_runs(
        [tracker.experiment_id], f"tags.`mlflow.parentRunId` = '{tracker.parent_id}'"
    )[0]
    charted = {k.removeprefix(CURVE) for k in child.data.metrics if k.startswith(CURVE)}
    assert charted == ({"train_loss", "val_loss", "val_roc_auc"} if curves == "main" else set(row))
    assert set(row) | {"trial_seconds"} <= set(child.data.metrics)


def test_the_default_tracking_conf_charts_the_main_curves() -> None:
    from tunefleet.pipeline.settings import load_tracking_settings

    assert load_tracking_settings().curve_keys("val_f1") == {"train_loss", "val_loss", "val_f1"}


def _tracker(tmp_path, client=None):
    from tunefleet.pipeline.settings import TrackingSettings
    from tunefleet.pipeline.store import connect
    from tunefleet.pipeline.tracker import MlflowTracker
    from tunefleet.search.experiment import load_experiment

    exp = load_experiment("sign", smoke=True)
    settings = TrackingSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    return MlflowTracker(settings, client or connect(settings), "held"), exp, exp.load()


def _record(trial_id: str):
    from tunefleet.search.result import TrialRecord
    from tunefleet.train_config import TrainConfig

    return TrialRecord(trial_id, {"lr": 0.01}, TrainConfig(), "finished", metrics={"val_loss": 0.4, "val_roc_auc": 0.9})


def test_ctrl_c_during_a_child_runs_writes_waits_for_them(tmp_path, monkeypatch) -> None:
    """Ctrl-C in the middle of a trial's writes: the child run ends whole, then the interrupt
    is raised. Before, it cut the writes (a run without results, still RUNNING) or left a
    SQLite transaction open, and ending the parent run KILLED failed with "database is locked"."""
    import signal

    monkeypatch.chdir(tmp_path)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (pytest-xdist ignores it)
    try:
        _interrupt_a_trials_writes(tmp_path)
    finally:
        signal.signal(signal.SIGINT, before)


def _interrupt_a_trials_writes(tmp_path) -> None:
    import os
    import signal

    from mlflow import MlflowClient

    class CtrlCDuringWrites(MlflowClient):
        armed = False

        def log_batch(self, *args, **kwargs):
            if self.armed:  # the user presses Ctrl-C as a trial's metrics are written
                os.kill(os.getpid(), signal.SIGINT)
            return super().log_batch(*args, **kwargs)

    client = CtrlCDuringWrites(f"sqlite:///{tmp_path / 'mlruns.db'}")
    tracker, exp, data = _tracker(tmp_path, client)
    tracker.on_search_start(exp, data, "s", tmp_path, False)
    client.armed = True
    with pytest.raises(KeyboardInterrupt), tracker.search_run():
        tracker.on_trial_end(_record("t1"))
    plain = MlflowClient(client.tracking_uri)
    (child,) = plain.search_runs([tracker.experiment_id], f"tags.`mlflow.parentRunId` = '{tracker.parent_id}'")
    assert child.info.status == "FINISHED" and child.data.metrics["val_roc_auc"] == 0.9
    assert plain.get_run(tracker.parent_id).info.status == "KILLED"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_logs_again_a_child_run_cut_off_before_its_end(tmp_path, monkeypatch) -> None:
    """A driver killed between a child run's creation and its end left it RUNNING, without
    results; `--resume` counted its trial as logged. Now it is deleted and the trial logged again."""
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    tracker, exp, data = _tracker(tmp_path)
    tracker.on_search_start(exp, data, "s", tmp_path, False)
    tracker.on_trial_end(_record("whole"))
    tracker._child("trial-cut", "trial", {"tunefleet.trial_id": "cut"})  # created, then the driver died
    again, _, _ = _tracker(tmp_path)
    again.on_search_start(exp, data, "s", tmp_path, True)
    assert again.parent_id == tracker.parent_id and again.logged == {"whole"}
    again.on_trial_end(_record("cut"))
    runs = MlflowClient(again.client.tracking_uri).search_runs(
        [again.experiment_id], f"tags.`mlflow.parentRunId` = '{again.parent_id}'"
    )
    assert sorted((r.data.tags["tunefleet.trial_id"], r.info.status) for r in runs) == [
        ("cut", "FINISHED"),
        ("whole", "FINISHED"),
    ]


class _Raced:
    """The real client, as a search sees it when another search of the same dataset started at
    the same moment: the experiment was not there yet when it looked, and the split's dataset
    row was inserted by the other one between MLflow's check and its insert (seen with three
    `tunefleet search sign` started together: one ended in an IntegrityError traceback)."""

    def __init__(self, client) -> None:
        self.client, self.looked, self.inserted = client, False, False

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def get_experiment_by_name(self, name: str):
        if not self.looked:
            self.looked = True
            return None
        return self.client.get_experiment_by_name(name)

    def log_inputs(self, run_id, datasets):
        from mlflow.exceptions import MlflowException

        if not self.inserted:
            self.inserted = True
            raise MlflowException(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, "
                "datasets.digest",
                error_code="BAD_REQUEST",
            )
        return self.client.log_inputs(run_id, datasets=datasets)


def test_searches_started_together_share_the_experiment_and_the_split_rows(tmp_path) -> None:
    first, exp, data = _tracker(tmp_path)
    first.on_search_start(exp, data, "first", tmp_path, resumed=False)
    second, _, _ = _tracker(tmp_path, _Raced(first.client))
    second.on_search_start(exp, data, "second", tmp_path, resumed=False)  # created the experiment anew: refused
    assert second.experiment_id == first.experiment_id
    inputs = second.client.get_run(second.parent_id).inputs.dataset_inputs
    assert sorted(i.dataset.name for i in inputs) == sorted(
        i.dataset.name for i in first.client.get_run(first.parent_id).inputs.dataset_inputs
    )
    assert len(inputs) == 3


def test_only_a_write_that_lost_a_race_is_tried_again() -> None:
    from mlflow.exceptions import MlflowException

    from tunefleet.pipeline.store import raced_once

    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise MlflowException("Run 'x' not found", error_code="RESOURCE_DOES_NOT_EXIST")

    with pytest.raises(MlflowException, match="not found"):
        raced_once(refused)
    assert len(calls) == 1
