"""End to end through the `tunefleet` CLI with real Ray and real MLflow (SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tunefleet.catalog import dataset_conf
from tunefleet.evaluation import raw_features
from tunefleet.pipeline.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh working dir with the embedded SQLite store, shared by this module's tests."""
    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlruns.db")
    yield root
    mp.undo()


def _search(store, *args: str) -> dict:
    out = store / "summary.json"
    code = main(["search", *args, "--smoke", "--quiet", "--json", str(out), "--storage-path", str(store / "runs")])
    assert code == 0
    return json.loads(out.read_text())


def _children(client: MlflowClient, parent: str) -> list:
    exp_id = client.get_run(parent).info.experiment_id
    return client.search_runs([exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=1000)


SMOKE = ["breast_cancer", "student_hours", "sign", "threshold_1d", "mnist"]


@pytest.mark.parametrize("name", SMOKE)
def test_smoke_search_tracks_registers_and_serves(local_ray, store, mnist_root, name: str) -> None:
    extra = (
        ["--set", f"dataset.options.root={mnist_root}", "--set", "dataset.options.download=false"]
        if name == "mnist"
        else []
    )
    summary = _search(store, name, "--cohort-size", "4", *extra)  # the 4 smoke trials as cohorts
    assert sum(summary["trials"].values()) == 4
    client = MlflowClient()
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["split_hash"] == summary["split_hash"]
    assert parent.data.tags["dataset"] == name and "command" in parent.data.tags
    assert parent.data.params["search.num_samples"] == "4"
    children = _children(client, parent.info.run_id)
    roles = [c.data.tags["tunefleet.role"] for c in children]
    assert roles.count("trial") == 4 and roles.count("baseline") == 1 and len(children) == 5
    trials = [c for c in children if c.data.tags["tunefleet.role"] == "trial"]
    assert len({c.data.tags["tunefleet.trial_id"] for c in trials}) == 4
    assert all(c.data.tags["node_id"] for c in trials)  # ran on a Ray node
    # the best trial is the best finished one by the search metric its run shows (the value
    # MLflow's runs table sorts by; the per-epoch curve is under epoch/<metric>); the champion
    # is the best candidate (trials, their ensemble, the baseline) by the same metric
    metric, mode = summary["metric"], summary["mode"]
    best_of = max if mode == "max" else min
    finished = {
        c.data.tags["tunefleet.trial_id"]: c.data.metrics[metric]
        for c in trials
        if c.data.tags["tunefleet.status"] == "finished"
    }
    assert finished[summary["best_trial"]] == best_of(finished.values())
    judged = [c[metric] for c in summary["candidates"]]  # the best trial's, the baseline's, the ensemble's
    assert summary["val_metrics"][metric] == best_of(judged)
    assert {"trial", "baseline"} <= {c["kind"] for c in summary["candidates"]}
    if name == "mnist":
        assert summary["val_metrics"]["val_accuracy"] > 0.5
    one = next(
        c
        for c in children
        if c.data.tags["tunefleet.role"] == "trial" and c.data.tags["tunefleet.status"] == "finished"
    )
    curve = client.get_metric_history(one.info.run_id, "epoch/val_loss")
    assert "lr" in one.data.params and len(curve) == one.data.metrics["epochs_run"] >= 1
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {
        "plots/curves.png",
        "plots/confusion_matrix.png",
        "plots/calibration.png",
        "plots/optimization_history.png",
        "plots/parallel_coordinates.png",
    } <= artifacts
    # registered, promoted, loadable by alias, predicting from raw rows
    # a smoke search registers under a name of its own: it never becomes the champion real searches must beat
    assert summary["registered_model"] == f"tunefleet-{name}-smoke" and summary["alias"] in {"champion", "challenger"}
    model = mlflow.pyfunc.load_model(f"models:/tunefleet-{name}-smoke@{summary['alias']}")
    conf = dataset_conf(name)
    if name == "mnist":
        conf = conf.model_copy(
            update={
                "dataset": conf.dataset.model_copy(update={"options": {"root": str(mnist_root), "download": False}})
            }
        )
    data = conf.load()
    rows = pd.DataFrame(raw_features(data, "test")[:7].astype(np.float64), columns=list(data.feature_names))
    pred = model.predict(rows)
    assert len(pred) == len(rows) and set(pred["label"]) <= set(data.class_labels)
    names = model.metadata.metadata["feature_names"]
    assert names == list(data.feature_names)
    shuffled = rows[names[::-1]].assign(row_id=range(len(rows)))  # any column order, extra columns ignored
    assert model.predict(shuffled)["label"].tolist() == pred["label"].tolist()
    records = model.predict(rows.head(2).to_dict("records"))  # a list of row dicts
    assert records["label"].tolist() == pred["label"].tolist()[:2]
    if data.task == "binary":
        assert list(pred.columns) == ["label", "probability"] and pred["probability"].between(0, 1).all()
    else:
        assert list(pred.columns) == ["label", *[f"probability_{c}" for c in data.class_labels]]
        assert np.allclose(pred.drop(columns="label").sum(axis=1), 1, atol=1e-5)
    assert summary["test_metrics"] and summary["baseline_metrics"]
    # every test metric and every lift over the baseline carries its 95% bootstrap interval
    assert set(summary["test_intervals"]) == set(summary["test_metrics"]) - {"test_loss"}
    for key, (low, high) in summary["test_intervals"].items():
        assert low <= high and (low <= summary["test_metrics"][key] <= high or low == high), key
    assert {name for name in summary["lifts"]} == {k.removeprefix("test_") for k in summary["test_intervals"]}
    assert all(lift["interval"][0] <= lift["interval"][1] for lift in summary["lifts"].values())


def test_champion_moves_only_on_evidence(local_ray, store, capsys) -> None:
    """A rerun that is not significantly better leaves champion where it was (the reason names p and the
    interval); a clearly weaker model is refused by the same paired test; ``--gate point`` is the old rule."""
    # one process (no Ray): the gate is the subject, and any driver gives it the same searches
    same = ["breast_cancer", "--model-name", "gate-test", "--scheduler", "none", "--backend", "optuna"]
    first = _search(store, *same)
    assert first["alias"] == "champion"
    again = _search(store, *same)  # the same seeded search: the same test predictions
    assert again["alias"] == "challenger", again["promotion_reason"]
    reason = again["promotion_reason"]
    assert reason.startswith(
        f"not significantly better than champion v{first['model_version']} (that needs two-sided p < 0.05 and the "
        "95% interval above +0): "
    )
    assert "difference +0.0000" in reason and "two-sided p=1 (" in reason and "interval [+0.0000, +0.0000]" in reason
    client = MlflowClient()
    version = client.get_model_version("gate-test-smoke", again["model_version"])
    assert version.tags["gate_vs_version"] == first["model_version"] and float(version.tags["gate_p_value"]) == 1.0
    assert str(client.get_model_version_by_alias("gate-test-smoke", "champion").version) == first["model_version"]
    weak = _search(
        store,
        *same,
        "--trials",
        "1",
        "--set",
        "space.epochs={type: int, low: 1, high: 1}",
        "--set",
        "space.lr={type: loguniform, low: 1.0e-6, high: 2.0e-6}",
        "--set",
        "space.optimizer={type: choice, values: [sgd]}",
        "--set",
        "space.momentum={type: uniform, low: 0.0, high: 0.01}",
        "--set",
        "candidates.baseline=false",  # the weak trial itself, not the baseline it would lose to
        "--set",
        "candidates.ensemble=0",
    )
    assert weak["alias"] == "challenger" and "not significantly better" in weak["promotion_reason"]
    # by hand: the same comparison is reported and refuses; --force promotes (the load check still runs)
    assert main(["promote", "gate-test-smoke", weak["model_version"]]) == 2
    printed = capsys.readouterr()
    assert "gate: not significantly better" in printed.out and "two-sided p=" in printed.out
    assert main(["promote", "gate-test-smoke", weak["model_version"], "--force"]) == 0
    assert str(client.get_model_version_by_alias("gate-test-smoke", "champion").version) == weak["model_version"]
    # the old rule: at least the champion's recorded test value (a tie goes to the newer version)
    point = _search(store, *same, "--gate", "point")
    assert point["alias"] == "champion" and point["promotion_reason"].endswith("(policy point)")


def test_a_resumed_search_keeps_the_version_it_registered(store) -> None:
    """Resumed after it had ended, a search finds the same best trial: it logs no second model
    and registers no second version of it; the summary names the version it kept."""
    args = ["sign", "--name", "resumed", "--model-name", "resume-test", "--backend", "optuna"]
    first = _search(store, *args)
    again = _search(store, *args, "--resume")
    assert again["parent_run_id"] == first["parent_run_id"]
    assert (again["model_version"], again["alias"]) == (first["model_version"], "champion")
    assert again["promotion_reason"].startswith("kept: registered by this search before the resume")
    client = MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name = 'resume-test-smoke'")] == [
        first["model_version"]
    ]
    exp_id = client.get_run(first["parent_run_id"]).info.experiment_id
    logged = [m for m in client.search_logged_models([exp_id]) if m.source_run_id == first["parent_run_id"]]
    assert len(logged) == 1
    # logged, not registered (--no-register), then resumed to register: the model logged before is registered
    args = ["sign", "--name", "resumed-later", "--model-name", "resume-later", "--backend", "optuna"]
    unregistered = _search(store, *args, "--no-register")
    registered = _search(store, *args, "--resume")
    assert unregistered["model_version"] is None and registered["model_version"] == "1"
    logged = [m for m in client.search_logged_models([exp_id]) if m.source_run_id == registered["parent_run_id"]]
    assert (
        len(logged) == 1
        and client.get_model_version("resume-later-smoke", "1").source == f"models:/{logged[0].model_id}"
    )


@pytest.fixture(scope="module")
def predict_model(local_ray, store) -> dict:
    """A sign model registered as `predict-test-smoke` (a smoke search's name): what the predict / promote /
    models tests use."""
    return _search(store, "sign", "--model-name", "predict-test", "--backend", "optuna")


def test_predict_command(predict_model, store, capsys) -> None:
    summary = predict_model
    rows = store / "rows.csv"
    pd.DataFrame({"x": [-3.0, 4.0, 7.0]}).to_csv(rows, index=False)
    out = store / "pred.csv"
    assert main(["predict", summary["model_uri"], "--input", str(rows), "--output", str(out)]) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["label", "probability"] and len(pred) == 3
    assert pred["label"].tolist() == [0, 1, 1]
    nested = store / "new" / "folder" / "pred.parquet"  # its folder is made (an OSError traceback before)
    assert main(["predict", summary["model_uri"], "--input", str(rows), "--output", str(nested)]) == 0
    assert pd.read_parquet(nested).equals(pred) and [p.name for p in nested.parent.iterdir()] == ["pred.parquet"]


# An interpreter in which torch cannot be imported (as in an environment built from the model's requirements).
NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("no torch in this environment")
sys.meta_path.insert(0, NoTorch())
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(model.predict(pd.DataFrame({"x": [-3.0, 4.0, 7.0]}))["label"].tolist())
"""


def test_the_logged_model_needs_no_torch(predict_model, store) -> None:
    """A registered model predicts in numpy: its requirements leave torch out (an environment built
    from them, by `mlflow models serve --env-manager uv` say, downloads ~6 GB less), and it loads
    and predicts where torch cannot be imported, as in such an environment."""
    uri = predict_model["model_uri"]
    requirements = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
    assert {r.split("==")[0] for r in requirements} == {"mlflow", "numpy", "pandas", "pydantic", "pyyaml"}
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, uri], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[0, 1, 1]"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "iris"], "unknown dataset 'iris'"),
        (["search", "--data", "nope.csv", "--target", "y"], "data file nope.csv does not exist"),
        (["search", "--data", "{csv}", "--target", "label"], "target column 'label' not found"),
        (
            ["search", "sign", "--tracking-uri", "http://127.0.0.1:9"],
            "cannot reach the MLflow tracking store at http://127.0.0.1:9",
        ),
        (["search", "sign", "--set", "space.lr.low=2"], "space.lr: .*low \\(2\\) is above high"),
        (["search", "sign", "--gpus-per-trial", "0.5"], "the Ray cluster has no GPUs"),
        (
            ["predict", "models:/does-not-exist@champion", "--input", "{csv}"],
            "cannot load model models:/does-not-exist@champion",
        ),
        (
            ["predict", "models:/predict-test-smoke@champion", "--input", "{csv}"],
            "lacks 1 of the model's feature column\\(s\\): x",
        ),
        (
            ["predict", "models:/tunefleet-sign@champion", "--input", "missing.csv"],
            "input file missing.csv does not exist",
        ),
        (["promote", "predict-test-smoke", "99"], "no registered model .predict-test-smoke. version 99"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    predict_model, store, capsys, monkeypatch, argv: list[str], message: str
) -> None:
    import re

    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlruns.db"
    )  # mlflow.set_tracking_uri leaks into the env

    csv = store / "bad.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]}).to_csv(csv, index=False)
    argv = [a.replace("{csv}", str(csv)) for a in argv]
    if argv[0] == "search":
        argv += ["--smoke", "--quiet", "--storage-path", str(store / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    assert re.search(message, err[-1]), err[-1]


def test_unreachable_ray_address_fails_fast(store) -> None:
    """In a fresh process (this module's tests share an already-started Ray)."""
    import subprocess
    import sys
    import time

    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunefleet",
            "search",
            "sign",
            "--smoke",
            "--address",
            "127.0.0.1:1",
            "--storage-path",
            str(store / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot connect to Ray at 127.0.0.1:1")
    assert time.monotonic() - started < 60


def test_datasets_and_models_commands(predict_model, store, capsys) -> None:
    assert main(["datasets"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:6]}
    assert sorted(rows) == sorted(SMOKE) and rows["breast_cancer"][1:4] == ["breast_cancer", "val_roc_auc", "max"]
    assert main(["models"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    mine = next(line for line in lines if line[0] == "predict-test-smoke" and line[1] == predict_model["model_version"])
    assert mine[2] == "champion" and mine[3] == "test_loss" and mine[5] == predict_model["split_hash"]
    assert float(mine[4]) == pytest.approx(predict_model["test_metrics"]["test_loss"], abs=1e-4)


# a hidden layer whose weights torch cannot size: every trial fails in torch, at once, anywhere
UNSIZABLE = ["--set", "space.n_layers={type: int, low: 1, high: 1}", "--set", f"space.width.values=[{2**62}]"]


@pytest.mark.parametrize("cohort_size", ["auto", "1"])
def test_failure_after_trials_keeps_what_was_logged(tmp_path, cohort_size) -> None:
    """Every trial fails for real (torch refuses a layer of 2**62 units): the trials and the
    baseline stay logged, the parent run is marked FAILED, exit code 2, and stderr holds
    tunefleet's one line (Tune printed each failed trial's traceback, then "Trials did not
    complete: [...]"). A command of its own:
    under pytest, the log records of Ray's loggers go to pytest's handlers, not to stderr."""
    db = f"sqlite:///{tmp_path}/mlruns.db"
    cmd = [sys.executable, "-m", "tunefleet.pipeline.cli", "search", "sign", "--smoke", "--cohort-size", cohort_size]
    cmd += ["--tracking-uri", db, *UNSIZABLE, "--set", "search.max_failures=0"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (err,) = proc.stderr.strip().splitlines()
    assert err.startswith("error: no trial finished") and "'failed': 4" in err
    client = MlflowClient(db)
    exp = client.get_experiment_by_name("tunefleet-sign")
    parent = client.search_runs([exp.experiment_id], "tags.`tunefleet.role` = 'search'")[0]
    assert parent.info.status == "FAILED"
    kids = _children(client, parent.info.run_id)
    trials = [k for k in kids if k.data.tags["tunefleet.role"] == "trial"]
    assert len(trials) == 4 and {k.data.tags["tunefleet.status"] for k in trials} == {"failed"}
    assert all(k.info.status == "FAILED" for k in trials)
    assert all("Storage size calculation overflowed" in k.data.tags["error"] for k in trials), trials[0].data.tags
    assert [k.data.tags["tunefleet.role"] for k in kids].count("baseline") == 1


def test_same_sampled_config_logs_identical_params_under_every_driver(local_ray, store) -> None:
    """Tune trials, one-process Optuna and cohorts sample the same first config and log the same params."""
    client = MlflowClient()
    params, val_loss = {}, {}
    for backend, k in (("ray", "1"), ("optuna", "1"), ("ray", "2")):
        label = f"params-{backend}-{k}"
        args = ["sign", "--trials", "1", "--backend", backend, "--cohort-size", k, "--experiment", label]
        summary = _search(store, *args, "--no-register")
        trial = next(c for c in _children(client, summary["parent_run_id"]) if c.data.tags["tunefleet.role"] == "trial")
        params[label], val_loss[label] = trial.data.params, trial.data.metrics["val_loss"]
        assert ("cohort" in trial.data.tags) == (k != "1")
    assert params["params-ray-1"] == params["params-optuna-1"] == params["params-ray-2"]
    # the same seeded TPE and define-by-run space, so the same model: equal under Tune and in one
    # process, and within the cohort equivalence tolerance as a cohort member
    assert val_loss["params-ray-1"] == pytest.approx(val_loss["params-optuna-1"], abs=1e-6)
    assert val_loss["params-ray-2"] == pytest.approx(val_loss["params-optuna-1"], abs=1e-4)
    assert {"lr", "hidden_widths", "torch_threads", "threshold.objective", "seed"} <= set(params["params-ray-1"])


def test_importance_and_warm_start_on_the_parent_run(local_ray, store, capsys) -> None:
    """Importance plot and table on the parent run under the one-process and the Tune backend, with
    the level it ranked; a second search with --warm-start reads the first one's finished and
    stopped trials from MLflow and says how many of each."""
    common = ["sign", "--trials", "8", "--cohort-size", "1", "--experiment", "warm"]
    common += ["--set", "search.scheduler.grace_period=2"]  # smoke epochs are 2-6: a rung at epoch 2
    first = _search(store, *common, "--backend", "optuna", "--no-register")
    second = _search(store, *common, "--backend", "ray", "--no-register", "--warm-start")
    counts = first["trials"]
    assert counts["stopped"] > 0  # successive halving stopped some at the rung
    assert (
        f"warm start: {counts['finished']} finished and {counts['stopped']} stopped trials from 1 earlier searches "
        f"of sign on split {first['split_hash']}"
    ) in capsys.readouterr().out
    client = MlflowClient()
    for summary in (first, second):
        assert set(summary["importance"]) == {"fanova", "ped_anova"} and "lr" in summary["importance"]["fanova"]
        assert summary["importance_basis"] == "8 trials' values at epoch 2 (the first rung)"  # all 8 reached it
        parent = summary["parent_run_id"]
        plots = {a.path for a in client.list_artifacts(parent, "plots")}
        assert {"plots/importance.png", "plots/importance.json"} <= plots
        metrics = client.get_run(parent).data.metrics
        assert any(k.startswith("importance_fanova_") for k in metrics)
    tags, metrics = (
        client.get_run(second["parent_run_id"]).data.tags,
        client.get_run(second["parent_run_id"]).data.metrics,
    )
    assert tags["warm_start"] == "true" and metrics["warm_start_trials"] == 8
