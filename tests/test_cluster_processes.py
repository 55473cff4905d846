"""The documented cluster recipe with real processes on this machine: `ray start --head` and a
`ray start --address` worker with token auth, an `mlflow server` (SQLite) on loopback, and
`tunefleet search --address` against them. A client without the cluster's token is refused."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.services import BIN, free_port, mlflow_server, process

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "pipeline"]
ALIVE = "import ray, sys; ray.init(address=sys.argv[1]); print(sum(n['Alive'] for n in ray.nodes()))"


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    proc = subprocess.run([sys.executable, "-c", ALIVE, address], env=env, capture_output=True, text=True, timeout=120)
    return int(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 and proc.stdout.strip() else 0


def _no_ray_left() -> bool:
    out = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True)
    return out.stdout.strip() == ""


def test_token_cluster_from_processes(tmp_path) -> None:
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    port = free_port()
    address = f"127.0.0.1:{port}"
    ray = str(BIN / "ray")
    with ExitStack() as stack:
        stack.enter_context(
            process(
                [
                    ray,
                    "start",
                    "--head",
                    f"--port={port}",
                    "--num-cpus=1",
                    "--include-dashboard=false",
                    "--disable-usage-stats",
                    "--block",
                ],
                tmp_path / "head.log",
                env=env,
            )
        )
        deadline = time.monotonic() + 120
        while _alive_nodes(address, env) < 1 and time.monotonic() < deadline:
            time.sleep(1)
        stack.enter_context(
            process([ray, "start", f"--address={address}", "--num-cpus=1", "--block"], tmp_path / "worker.log", env=env)
        )
        while _alive_nodes(address, env) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        assert _alive_nodes(address, env) == 2, (tmp_path / "worker.log").read_text()[-2000:]
        url = stack.enter_context(mlflow_server(tmp_path))

        # the documented command, against both
        search = subprocess.run(
            [
                *CLI,
                "search",
                "breast_cancer",
                "--address",
                address,
                "--tracking-uri",
                url,
                "--trials",
                "6",
                "--scheduler",
                "none",
                "--storage-path",
                str(tmp_path / "runs"),
                "--json",
                "s.json",
                "--set",
                "space.epochs={type: int, low: 15, high: 30}",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
        summary = json.loads((tmp_path / "s.json").read_text())
        assert sum(summary["trials"].values()) == 6 and summary["alias"] == "champion"

        client = MlflowClient(url, registry_uri=url)
        parent = client.get_run(summary["parent_run_id"])
        trials = client.search_runs(
            [parent.info.experiment_id],
            f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`tunefleet.role` = 'trial'",
        )
        assert len(trials) == 6  # every trial is in the server's MLflow
        nodes = {t.data.tags["node_id"] for t in trials}
        assert len(nodes) == 2, f"trials ran on {nodes}"  # and they ran on both nodes
        mlflow.set_tracking_uri(url)
        model = mlflow.pyfunc.load_model("models:/tunefleet-breast_cancer@champion")
        rows = pd.DataFrame([[float(v) for v in range(30)]], columns=model.metadata.metadata["feature_names"])
        assert list(model.predict(rows).columns) == ["label", "probability"]

        # a client with the wrong token, or none, is refused
        for bad_env in (
            {**env, "RAY_AUTH_TOKEN": "not-the-token"},
            {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")},
        ):
            refused = subprocess.run(
                [
                    *CLI,
                    "search",
                    "sign",
                    "--smoke",
                    "--address",
                    address,
                    "--tracking-uri",
                    url,
                    "--storage-path",
                    str(tmp_path / "runs"),
                ],
                cwd=tmp_path,
                env=bad_env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
            assert refused.stderr.strip().splitlines()[-1].startswith(f"error: cannot connect to Ray at {address}")
    # `ray start` registered the cluster in /tmp/ray/ray_current_cluster; stopping it by
    # signal (not `ray stop`) leaves that file behind, so remove it as `ray stop` would.
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    if current.is_file() and str(port) in current.read_text():
        current.unlink()
    deadline = time.monotonic() + 30
    while not _no_ray_left() and time.monotonic() < deadline:
        time.sleep(1)
    assert _no_ray_left(), "ray processes left running after the test"
