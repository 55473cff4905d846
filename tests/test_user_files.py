"""A user's own CSV, end to end: integer, boolean, float and text features, empty cells, string labels, an id column.

Search it through the CLI (real Ray, real MLflow on SQLite), load the champion by alias
in a fresh process and predict on the raw file (label and id columns still in it), run
`tunefleet predict` on it, read runs and datasets through the UI's REST API, and call
`mlflow models serve` with JSON integers and text.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.services import BIN, free_port, process, wait_http
from tunefleet.pipeline.cli import main

pytestmark = pytest.mark.integration
FEATURES = ["age", "visits", "smoker", "bmi", "ward"]
EXPERIMENT = "tunefleet-clinic"
MODEL = "tunefleet-clinic-smoke"  # a smoke search's registered name


def write_clinic_csv(path: Path, n: int = 300, seed: int = 0) -> Path:
    """Integer, boolean, float and text features, empty cells, string labels, and an id column that is not a feature."""
    rng = np.random.default_rng(seed)
    age, visits = rng.integers(20, 80, n), rng.integers(0, 12, n)
    smoker, bmi = rng.random(n) < 0.3, rng.normal(27, 4, n).round(1)
    ward = rng.choice(["cardio", "general", "oncology"], n)
    score = 0.05 * (age - 50) + 0.3 * visits + 1.5 * smoker + 0.1 * (bmi - 27) + rng.normal(0, 1, n)
    score += np.where(ward == "oncology", 1.0, 0.0)
    frame = pd.DataFrame({"patient_id": np.arange(n) + 1000, "age": age, "visits": visits, "smoker": smoker})
    frame["bmi"], frame["ward"] = bmi, ward
    frame.loc[20::13, "bmi"] = np.nan  # not measured: filled and flagged; the first rows (sent to REST) keep theirs
    frame["outcome"] = np.where(score > 0.8, "sick", "healthy")
    frame.to_csv(path, index=False)
    return path


@contextlib.contextmanager
def clinic_workdir(root: Path) -> Iterator[tuple[Path, str]]:
    """The clinic file in ``root``, which is the working directory meanwhile, with a tracking store of its own there."""
    csv = write_clinic_csv(root / "clinic.csv")
    db = f"sqlite:///{root}/mlruns.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", db)
        yield csv, db


def smoke_search_args(csv: Path, out: Path) -> list[str]:
    """``tunefleet search`` of the clinic file with its features, as a quiet smoke search writing ``--json`` to ``out``."""
    return ["search", "--data", str(csv), "--target", "outcome", "--set",
            f"dataset.options.features={json.dumps(FEATURES)}", "--smoke", "--quiet", "--json", str(out)]  # fmt: skip


@pytest.fixture(scope="module")
def searched(tmp_path_factory, local_ray):
    """One smoke search of the clinic file with 5-fold cross-validated trials; the champion it registered."""
    root = tmp_path_factory.mktemp("userfile")
    with clinic_workdir(root) as (csv, db):
        assert main([*smoke_search_args(csv, root / "s.json"), "--cv", "5"]) == 0
        yield root, csv, db, json.loads((root / "s.json").read_text())


def test_cross_validated_trials_on_a_user_file(searched) -> None:
    """--cv 5: every trial scored on the mean of 5 folds (std logged), its model its 5 fold models."""
    _root, _csv, _db, summary = searched
    assert summary["cv_folds"] == 5 and summary["val_test_gap"] is not None
    client = MlflowClient()
    exp_id = client.get_run(summary["parent_run_id"]).info.experiment_id
    kids = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'")
    trials = [
        k
        for k in kids
        if k.data.tags.get("tunefleet.role") == "trial" and k.data.tags["tunefleet.status"] == "finished"
    ]
    assert trials and all(k.data.metrics["cv_folds"] == 5 and "val_loss_std" in k.data.metrics for k in trials)
    params = client.get_run(summary["parent_run_id"]).data.params  # what became of the text and empty cells
    assert json.loads(params["data.text_columns"]) == ["ward"] and json.loads(params["data.filled_columns"]) == ["bmi"]


def test_champion_loads_in_a_fresh_process_and_predicts_the_raw_file(searched) -> None:
    _root, csv, db, summary = searched
    assert summary["alias"] == "champion"
    script = (
        "import json, mlflow, pandas as pd\n"
        f"m = mlflow.pyfunc.load_model('models:/{MODEL}@champion')\n"
        f"raw = pd.read_csv({str(csv)!r})\n"
        "out = m.predict(raw)\n"  # label and id columns still in it
        "print(json.dumps({'labels': out['label'].tolist(), 'p': out['probability'].tolist(),"
        " 'records': m.predict(raw.drop(columns='outcome').head(3).to_dict('records'))['label'].tolist()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "MLFLOW_TRACKING_URI": db}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    truth = pd.read_csv(csv)["outcome"]
    assert set(got["labels"]) <= {"healthy", "sick"} and len(got["labels"]) == len(truth)
    assert (np.array(got["labels"]) == truth.to_numpy()).mean() > 0.75  # it learned something real
    assert got["records"] == got["labels"][:3]
    assert all(0 <= p <= 1 for p in got["p"])


def test_predict_command_on_the_training_file(searched, capsys) -> None:
    root, csv, _db, summary = searched
    out = root / "pred.parquet"
    assert main(["predict", summary["model_uri"], "--input", str(csv), "--output", str(out)]) == 0
    printed = capsys.readouterr()
    assert "ignoring 2 column(s) the model does not use: patient_id, outcome" in printed.err
    accuracy = float(printed.out.split("accuracy ")[1].split()[0])
    pred = pd.read_parquet(out)
    assert accuracy == pytest.approx(
        (pred["label"] == pd.read_csv(csv)["outcome"]).mean(), abs=5e-5
    )  # printed to 4 places
    assert "predicted" in printed.out and "sick" in printed.out
    # a missing feature column is one line naming it
    pd.read_csv(csv).drop(columns=["bmi"]).to_csv(root / "nobmi.csv", index=False)
    assert main(["predict", summary["model_uri"], "--input", str(root / "nobmi.csv")]) == 2
    assert "bmi" in capsys.readouterr().err


def _get(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _start_ui(root: Path, db: str, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # no venv on PATH: the CLI must find mlflow through its own interpreter
    with open(root / f"ui-{port}.log", "w") as log:
        return subprocess.Popen(
            [str(BIN / "tunefleet"), "ui", "--port", str(port), "--tracking-uri", db],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
            start_new_session=True,
        )


def _stop_ui(ui: subprocess.Popen, base: str, sig: int) -> None:
    """``sig`` to the UI's process group (what a terminal sends): it exits 0 and its server goes with it,
    every process of it (uvicorn workers, MLflow's job consumers), not just the listening socket."""
    server_pid = int(subprocess.run(["pgrep", "-P", str(ui.pid)], capture_output=True, text=True).stdout.split()[0])
    server_group = os.getpgid(server_pid)
    os.killpg(ui.pid, sig)
    assert ui.wait(timeout=60) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/health", timeout=2)
    deadline = time.monotonic() + 10  # its last processes may take a moment to be reaped
    while (
        time.monotonic() < deadline
        and subprocess.run(["pgrep", "-g", str(server_group)], capture_output=True).returncode == 0
    ):
        time.sleep(0.2)
    assert subprocess.run(["pgrep", "-g", str(server_group)], capture_output=True).returncode == 1  # none left


def _kill(ui: subprocess.Popen) -> None:
    """After a failure: the UI and its server (which runs in a session of its own), so nothing is left running."""
    children = subprocess.run(["pgrep", "-P", str(ui.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(int(pid)), signal.SIGKILL)
    if ui.poll() is None:
        os.killpg(ui.pid, signal.SIGKILL)


def _contexts(run: dict) -> dict[str, str]:
    """A run's dataset inputs as {context: digest}, as the UI's REST API returns them."""
    out = {}
    for d in run["inputs"]["dataset_inputs"]:
        context = {t["key"]: t["value"] for t in d["tags"]}["mlflow.data.context"]
        out[context] = d["dataset"]["digest"]
    return out


def test_ui_from_the_venv_without_activation_shows_runs_and_datasets(searched) -> None:
    root, _csv, db, summary = searched
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ui = _start_ui(root, db, port)
    try:
        wait_http(f"{base}/health", timeout=120, proc=ui)
        # the same REST calls the UI makes
        exp = _get(f"{base}/ajax-api/2.0/mlflow/experiments/get-by-name?experiment_name={EXPERIMENT}")["experiment"]
        tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        runs = _get(f"{base}/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
        by_role: dict[str, list[dict]] = {}
        for run in runs:
            by_role.setdefault({t["key"]: t["value"] for t in run["data"]["tags"]}["tunefleet.role"], []).append(run)
        parent, trials = by_role["search"][0], by_role["trial"]
        assert len(trials) == 4
        assert _contexts(parent) == dict.fromkeys(("training", "validation", "test"), summary["split_hash"])
        for trial in trials:
            assert _contexts(trial) == dict.fromkeys(("training", "validation"), summary["split_hash"])
        _stop_ui(ui, base, signal.SIGINT)  # Ctrl-C
    finally:
        _kill(ui)
    assert "Traceback" not in (root / f"ui-{port}.log").read_text()


def test_ui_stopped_by_sigterm_takes_its_server_along(searched) -> None:
    root, _csv, db, _summary = searched
    port = free_port()
    ui = _start_ui(root, db, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=ui)
        _stop_ui(ui, f"http://127.0.0.1:{port}", signal.SIGTERM)
    finally:
        _kill(ui)


@pytest.mark.slow
def test_served_champion_takes_json_integers(searched) -> None:
    root, csv, db, _summary = searched
    port = free_port()
    serve = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion"]
    serve += ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)]
    rows = pd.read_csv(csv).head(4)
    import mlflow

    mlflow.set_tracking_uri(db)
    expected = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict(rows)["label"].tolist()
    ints = rows[FEATURES].astype({"smoker": int}).to_dict("records")  # JSON integers for age/visits/smoker, text ward
    bodies = {
        "dataframe_split": {
            "dataframe_split": {"columns": [*FEATURES, "outcome"], "data": [[*r.values(), "x"] for r in ints]}
        },
        "dataframe_records": {"dataframe_records": ints},
        "inputs": {"inputs": {k: [r[k] for r in ints] for k in FEATURES}},
    }
    with process(serve, root / "serve.log", env={"MLFLOW_TRACKING_URI": db}) as server:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=180, proc=server)
        answers = {
            name: _get(f"http://127.0.0.1:{port}/invocations", body)["predictions"] for name, body in bodies.items()
        }
    labels = {name: [p["label"] for p in preds] for name, preds in answers.items()}
    assert labels["dataframe_split"] == labels["dataframe_records"] == labels["inputs"]
    assert labels["inputs"] == expected


def test_test_metrics_equal_mlflow_evaluate(searched) -> None:
    """Our label metrics on the test rows equal what MLflow's own evaluator computes from the champion's labels."""
    import mlflow

    from tunefleet.evaluation import raw_features
    from tunefleet.search.experiment import load_experiment

    _root, csv, _db, summary = searched
    exp = load_experiment(
        data_file=str(csv),
        target="outcome",
        overrides=[f"dataset.options.features={json.dumps(FEATURES)}", "split.cv_folds=5"],  # as searched
    )
    data = exp.load()
    assert data.split_hash == summary["split_hash"]
    model = mlflow.pyfunc.load_model(summary["model_uri"])
    labels = model.predict(pd.DataFrame(raw_features(data, "test"), columns=list(data.feature_names)))["label"]
    frame = pd.DataFrame({"prediction": labels, "target": np.asarray(data.class_labels)[data.y_test]})
    with mlflow.start_run(run_name="evaluate-check"):
        result = mlflow.models.evaluate(
            data=frame,
            predictions="prediction",
            targets="target",
            model_type="classifier",
            evaluator_config={"pos_label": data.class_labels[1], "log_model_explainability": False},
        )
    for ours, theirs in (
        ("accuracy", "accuracy_score"),
        ("precision", "precision_score"),
        ("recall", "recall_score"),
        ("f1", "f1_score"),
    ):
        assert summary["test_metrics"][f"test_{ours}"] == pytest.approx(result.metrics[theirs], abs=1e-9), ours
