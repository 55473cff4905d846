"""The README's Python example runs as written, in a fresh process and an empty folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # a real search: Ray, MLflow

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_example() -> str:
    text = README.read_text()
    section = text[text.index("**In Python.**") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    example = _python_example()
    assert "tunefleet.load(" in example and "train_one(" in example and "search(" in example
    proc = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = proc.stdout.strip().splitlines()[-2:]
    val_auc, test_accuracy = map(float, first.split())
    assert 0.9 < val_auc <= 1 and 0.9 < test_accuracy <= 1
    assert second.endswith("models:/tunefleet-breast_cancer@champion")  # the first model under the name
    assert (tmp_path / "mlruns.db").is_file()  # the default store, in the working directory
