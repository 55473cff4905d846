"""Real server processes: a tracking server over HTTP, and --resume after a killed driver.

(`mlflow models serve` is exercised in tests/test_user_files.py.)
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.services import NOISE, mlflow_server

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "tunefleet.pipeline"]


def _run(args: list[str], cwd, env=None, timeout: int = 400) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*CLI, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.extended
def test_tracking_server_over_http(tmp_path) -> None:
    """Extended: tests/test_cluster_processes.py's token-cluster test (in CI) runs the same path,
    a real `mlflow server`, the search logging over HTTP and the champion loaded from its
    registry, against a two-node cluster."""
    with mlflow_server(tmp_path) as url:
        _run(["search", "sign", "--smoke", "--quiet", "--json", "s.json", "--tracking-uri", url], cwd=tmp_path)
        summary = json.loads((tmp_path / "s.json").read_text())
        assert summary["alias"] == "champion" and summary["tracking_uri"] == url
        assert not (tmp_path / "mlruns.db").exists()  # nothing went to the embedded store
        client = MlflowClient(url, registry_uri=url)
        parent = client.get_run(summary["parent_run_id"])
        kids = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        assert len(kids) == 5
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        model = mlflow.pyfunc.load_model("models:/tunefleet-sign-smoke@champion")
        import pandas as pd

        assert model.predict(pd.DataFrame({"x": [-5.0, 5.0]}))["label"].tolist() == [0, 1]


def _trial_children(db: str) -> list:
    client = MlflowClient(db)
    exp = client.get_experiment_by_name("tunefleet-breast_cancer")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.`tunefleet.role` = 'trial'", max_results=1000)


def _trials_logged_so_far(store: Path) -> int:
    """Trial child runs in a store another process is writing, read without MLflow.

    Opening the store with MLflow while the driver creates it would race the driver's own
    initialisation (seen in CI: "table ... already exists" killed the driver); a read-only
    SQLite query neither creates the file nor migrates it.
    """
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1.0) as conn:
            query = "SELECT COUNT(*) FROM tags WHERE key = 'tunefleet.role' AND value = 'trial'"
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet, or locked by a write: ask again at the next poll
        return 0


@pytest.mark.parametrize(
    ("cohort_size", "trials"),
    [
        pytest.param("1", 8, id="tune-trials", marks=pytest.mark.extended),
        # Cohorts train 8 of these trials in about a second: under CI's load the first 3 child
        # runs and the last could land between two polls, and nothing was left to kill.
        pytest.param("2", 24, id="cohorts"),
    ],
)
def test_resume_after_killed_driver(tmp_path, cohort_size: str, trials: int) -> None:
    db = f"sqlite:///{tmp_path}/mlruns.db"
    args = [
        "search",
        "breast_cancer",
        "--cohort-size",
        cohort_size,
        "--trials",
        str(trials),
        "--scheduler",
        "none",
        "--set",
        "space.epochs={type: int, low: 10, high: 20}",
        "--name",
        "resume-me",
        "--json",
        "s.json",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": db}
    with open(tmp_path / "first.log", "w") as log:
        driver = subprocess.Popen(
            [*CLI, *args], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 300
        while (
            _trials_logged_so_far(tmp_path / "mlruns.db") < 3 and time.monotonic() < deadline and driver.poll() is None
        ):
            time.sleep(0.5)
        assert driver.poll() is None, (
            "the search ended before it was killed:\n" + (tmp_path / "first.log").read_text()[-2000:]
        )
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
        driver.wait(timeout=30)
    logged_before = {r.data.tags["tunefleet.trial_id"] for r in _trial_children(db)}
    assert 3 <= len(logged_before) < trials
    time.sleep(2)
    resumed = _run([*args, "--resume"], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": db})
    # the resumed run prints tunefleet's lines only, under either driver (no Ray/MLflow/Tune banners)
    noisy = [line for line in (resumed.stdout + resumed.stderr).splitlines() if NOISE.search(line)]
    assert noisy == []
    summary = json.loads((tmp_path / "s.json").read_text())
    assert sum(summary["trials"].values()) == trials and summary["search_name"] == "resume-me"
    children = _trial_children(db)
    ids = [r.data.tags["tunefleet.trial_id"] for r in children]
    assert len(ids) == len(set(ids)) == trials  # no duplicate child runs
    assert logged_before <= set(ids)
    client = MlflowClient(db)
    parents = client.search_runs([children[0].info.experiment_id], "tags.`tunefleet.role` = 'search'")
    assert len(parents) == 1 and parents[0].info.run_id == summary["parent_run_id"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {summary["parent_run_id"]}
    assert summary["alias"] == "champion"


def test_a_tracking_server_lost_mid_search_ends_it_in_one_line_and_resume_finishes_it(tmp_path) -> None:
    """The server dies while trials run: the search ends with exit 2 and one line (it had
    retried each write for minutes, then printed a traceback), and once the server is back,
    `--resume` logs what is missing: one parent run, every trial once."""
    from tests.services import free_port

    port, trials = free_port(), 32
    args = ["search", "breast_cancer", "--trials", str(trials), "--cohort-size", "8", "--name", "cut"]
    args += ["--no-register", "--tracking-uri", f"http://127.0.0.1:{port}"]
    once = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}  # give up at once, not after a user's ~30 s
    # killed, not shut down: uvicorn's graceful shutdown served the search's open connection on,
    # and a short search could end its writes before the server was gone (seen once in CI)
    with mlflow_server(tmp_path, port=port, abrupt=True):
        search = subprocess.Popen([*CLI, *args], cwd=tmp_path, env=once, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert search.stdout is not None
        for line in search.stdout:  # a trial is logged: the search is under way
            if line.startswith(f"[  1/{trials}]"):
                break
    _, err = search.communicate(timeout=120)  # the server is gone
    assert search.returncode == 2, err[-3000:]
    assert len(err.strip().splitlines()) == 1 and err.startswith(
        f"error: lost the MLflow tracking store at http://127.0.0.1:{port} ("
    ), err[-3000:]
    assert err.strip().endswith(
        "what was logged is kept: start the server again, then run the same command with --resume"
    )
    with mlflow_server(tmp_path, port=port) as url:
        _run([*args, "--resume"], cwd=tmp_path)
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("tunefleet-breast_cancer").experiment_id
        runs = client.search_runs([experiment], max_results=1000)
    roles = [r.data.tags["tunefleet.role"] for r in runs]
    ids = [r.data.tags["tunefleet.trial_id"] for r in runs if r.data.tags["tunefleet.role"] == "trial"]
    assert roles.count("search") == 1 and len(ids) == len(set(ids)) == trials
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_a_tracking_server_is_given_up_on_in_about_30_s_unless_the_user_says_otherwise(monkeypatch) -> None:
    from tunefleet.pipeline.store import SERVER_PATIENCE, bounded_patience

    for name in SERVER_PATIENCE:
        monkeypatch.delenv(name, raising=False)
    bounded_patience("sqlite:///mlruns.db")
    assert not any(name in os.environ for name in SERVER_PATIENCE)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")
    bounded_patience("http://tracking:5000")
    assert {name: os.environ[name] for name in SERVER_PATIENCE} == {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "9",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    }
