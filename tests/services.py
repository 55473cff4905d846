"""Helpers to run real server processes (mlflow server, mlflow models serve, ray start) on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def process(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None, abrupt: bool = False
) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` in its own session; stop its whole process group at the end (``abrupt``: SIGKILL at once)."""
    with open(log, "w") as fh:
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # the venv's uvicorn/gunicorn, as if activated
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PATH": path, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop(proc, grace=0.0 if abrupt else 10.0)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds (at once for 0)."""
    if proc.poll() is not None:
        return
    try:
        if grace <= 0:
            raise subprocess.TimeoutExpired(proc.args, 0)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=max(grace, 10.0))


@contextmanager
def mlflow_server(
    root: Path, backend: str | None = None, port: int | None = None, abrupt: bool = False
) -> Iterator[str]:
    """A real `mlflow server` with a SQLite backend and served artifacts, on 127.0.0.1 (a free port
    unless given); ``abrupt``: killed at the end, as a crashed host goes, not shut down."""
    port = port or free_port()
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend or f"sqlite:///{root}/server.db",
        "--serve-artifacts",
        "--artifacts-destination",
        str(root / "server-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # no MLflow job queue: its seven polling consumers would take most of a core from the tests
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with process(cmd, root / "mlflow-server.log", env=env, abrupt=abrupt) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc=proc)
        yield url


# What the CLI must not print unless --verbose: library log lines, warnings, banners, colour codes.
NOISE = re.compile(r"Warning|INFO|Checkpoint successfully|Token authentication|\x1b\[")
