"""The fast suite (plain ``pytest``) imports neither Ray nor MLflow, and stays about a minute."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.import_guard import ImportGuard, fast_run

REPO = Path(__file__).resolve().parents[1]


def test_the_guard_refuses_ray_and_mlflow_in_a_fast_run_only() -> None:
    guard = ImportGuard()
    for name in ("ray", "ray.tune", "mlflow", "mlflow.tracking"):
        with pytest.raises(ImportError, match="the fast suite imports no (ray|mlflow): mark the test"):
            guard.find_spec(name, None)
    assert guard.find_spec("numpy", None) is None and guard.find_spec("rayon", None) is None
    assert fast_run("not integration and not slow")  # pyproject's default: plain `pytest`
    assert not fast_run("(integration or slow or not (integration or slow)) and not extended")  # `make test`
    assert not fast_run("integration")
    assert not fast_run("")  # no -m at all: everything runs


@pytest.mark.slow
def test_the_fast_suite_passes_under_the_guard_in_about_a_minute() -> None:
    """Run as a developer runs it (``make test-fast``): a fresh process, the default markers."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "import guard: mlflow, ray refused (the fast suite)" in proc.stdout
    assert " passed" in proc.stdout.splitlines()[-1]
    print(f"fast suite: {took:.0f} s ({proc.stdout.splitlines()[-1]})")  # shares 2 cores with CI's other tests
