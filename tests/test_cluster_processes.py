"""Real multi-node Ray clusters on this machine.

- The documented recipe with real processes: `ray start --head` and a `ray start --address`
  worker with token auth, an `mlflow server` (SQLite) on loopback, and
  `tunefleet search --address` against them. A client without the cluster's token is refused.
- ``ray.cluster_utils.Cluster``: trials spread over nodes, and a worker node removed
  mid-search leaves every trial accounted for.

One file on purpose: the suite runs files on parallel workers, and these two clusters
are kept from starting at the same time.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.services import BIN, free_port, mlflow_server, process
from tunefleet.search import load_experiment, run_search
from tunefleet.search.ray.connect import tcp_problem
from tunefleet.search.result import TrialRecord

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "tunefleet.pipeline"]
# one process per wait (importing Ray costs seconds): connect, then poll until n nodes are alive
WAIT_NODES = (
    "import ray, sys, time; ray.init(address=sys.argv[1]); n, end = int(sys.argv[2]), time.monotonic() + 120\n"
    "while sum(x['Alive'] for x in ray.nodes()) < n and time.monotonic() < end: time.sleep(0.5)\n"
    "print(sum(x['Alive'] for x in ray.nodes()))"
)


def _wait_for_nodes(address: str, n: int, env: dict[str, str]) -> int:
    """How many nodes are alive once ``n`` are (or 2 minutes passed)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + 120
    while tcp_problem(host, int(port), 1.0) and time.monotonic() < deadline:
        time.sleep(0.5)  # the head's GCS is not listening yet
    proc = subprocess.run(
        [sys.executable, "-c", WAIT_NODES, address, str(n)], env=env, capture_output=True, text=True, timeout=180
    )
    return int(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 and proc.stdout.strip() else 0


def _no_ray_left(port: int) -> bool:
    """No raylet or GCS of the cluster on ``port`` left (other tests' Rays may be running)."""
    pattern = f"(raylet|gcs_server).*(gcs-address=[^ ]*:{port}( |$)|gcs_server_port={port}( |$))"
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
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
        assert _wait_for_nodes(address, 1, env) == 1, (tmp_path / "head.log").read_text()[-2000:]
        worker = [ray, "start", f"--address={address}", "--num-cpus=1", "--block"]
        stack.enter_context(process(worker, tmp_path / "worker.log", env=env))
        if _wait_for_nodes(address, 2, env) != 2:
            # `ray start` gives a new node a fixed 30 s to register with the GCS; on a loaded
            # 2-core machine (CI runs the other tests beside this one) that can run out once
            stack.enter_context(process(worker, tmp_path / "worker-again.log", env=env))
        assert _wait_for_nodes(address, 2, env) == 2, (tmp_path / "worker.log").read_text()[-2000:]
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
                "space.epochs={type: int, low: 5, high: 10}",
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
        assert not (tmp_path / "mlruns.db").exists()  # nothing went to the embedded store

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

        # a client with the wrong token, or none, is refused (both at once: each waits out Ray's retries)
        # Ray retries a refused GCS request for 60 s by default; 3 s is enough to see the refusal
        quick = {"RAY_gcs_server_request_timeout_seconds": "3"}
        bad_envs = (
            {**env, **quick, "RAY_AUTH_TOKEN": "not-the-token"},
            {**{k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}, **quick},
        )
        refused_cmd = [*CLI, "search", "sign", "--smoke", "--address", address, "--tracking-uri", url]
        refused_cmd += ["--storage-path", str(tmp_path / "runs")]
        clients = [
            subprocess.Popen(
                refused_cmd, cwd=tmp_path, env=bad, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for bad in bad_envs
        ]
        for client_proc in clients:
            out, err = client_proc.communicate(timeout=300)
            assert client_proc.returncode == 2, out[-2000:] + err[-2000:]
            assert err.strip().splitlines()[-1].startswith(f"error: cannot connect to Ray at {address}")
    # `ray start` registered the cluster in /tmp/ray/ray_current_cluster; stopping it by
    # signal (not `ray stop`) leaves that file behind, so remove it as `ray stop` would.
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    if current.is_file() and str(port) in current.read_text():
        current.unlink()
    deadline = time.monotonic() + 30
    while not _no_ray_left(port) and time.monotonic() < deadline:
        time.sleep(1)
    assert _no_ray_left(port), "ray processes left running after the test"


class RemoveWorkerAfter:
    """Observer that kills the worker node once ``n`` trials have ended."""

    def __init__(self, cluster, node, n: int) -> None:
        self.cluster, self.node, self.n = cluster, node, n
        self.ended: list[TrialRecord] = []
        self.removed = threading.Event()

    def on_search_start(self, *args, **kwargs) -> None:
        pass

    def on_trial_end(self, record: TrialRecord) -> None:
        self.ended.append(record)
        if len(self.ended) == self.n and not self.removed.is_set():
            threading.Thread(target=self._remove, daemon=True).start()

    def _remove(self) -> None:
        self.cluster.remove_node(self.node, allow_graceful=False)
        self.removed.set()


@pytest.mark.parametrize(
    "cohort_size", [pytest.param(1, id="tune-trials", marks=pytest.mark.extended), pytest.param(4, id="cohorts")]
)
def test_multi_node_search_survives_worker_loss(tmp_path, cohort_size: int) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address)
        exp = load_experiment(
            "breast_cancer",
            overrides=[
                f"search.storage_path={tmp_path}",
                "search.num_samples=8",
                "search.max_failures=3",
                f"search.cohort_size={cohort_size}",
                "search.scheduler.name=none",
                "space.epochs={type: int, low: 20, high: 40}",
            ],
        )
        killer = RemoveWorkerAfter(cluster, worker, n=3)
        result = run_search(exp, observers=[killer], progress=True)
        assert killer.removed.is_set()
        assert len(result.trials) == 8 and sum(result.counts().values()) == 8
        assert len({t.trial_id for t in result.trials}) == 8
        nodes = {t.node_id for t in result.trials if t.node_id}
        if cohort_size == 1:
            assert len(nodes) >= 2, f"trials ran on {nodes}"
            assert result.counts()["finished"] >= 7  # trials lost with the node were retried elsewhere
        else:  # a cohort lost with its node is re-run whole (deterministic members): no member is lost
            assert result.counts()["finished"] == 8
            assert len({t.cohort for t in result.trials}) >= 2
        assert result.best_bundle is not None
    finally:
        ray.shutdown()
        cluster.shutdown()
