"""The main command prints tunefleet's own lines only; --verbose brings the libraries' lines back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.services import NOISE

pytestmark = pytest.mark.integration


def _smoke(tmp_path, *extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # a user's shell, not pytest's
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/mlruns.db"
    proc = subprocess.run(
        [sys.executable, "-m", "tunefleet.pipeline", "search", "breast_cancer", "--smoke", *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return (proc.stdout + proc.stderr).splitlines()


def test_smoke_search_prints_only_tunefleet_lines(tmp_path) -> None:
    """The default (cohorts); Tune trials' output is held to the same rule in tests/test_services.py's resume test."""
    lines = _smoke(tmp_path)
    noisy = [line for line in lines if NOISE.search(line)]
    assert noisy == []
    assert lines[0].startswith("starting search breast_cancer-")
    assert sum(line.startswith("[  ") for line in lines) == 4  # one progress line per trial
    assert any(line.startswith("registered   tunefleet-breast_cancer-smoke") for line in lines)
    assert len(lines) <= 28  # start, 4 progress lines, the summary (champion, cv, 9 metrics, gate, how to load)


@pytest.mark.slow
def test_verbose_brings_the_library_lines_back(tmp_path) -> None:
    """The default driver, as the quiet test above: what --quiet drops from it comes back."""
    lines = _smoke(tmp_path, "--verbose")
    assert any("INFO mlflow" in line for line in lines)  # MLflow's logger, quieted at its level
    assert any("Token authentication is enabled" in line for line in lines)  # Ray's auth logger
