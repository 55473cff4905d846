"""One installed name: the wheel holds the package ``tunefleet`` alone (its search and pipeline
layers and its conf inside it), and the command runs from that wheel in a fresh venv."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # builds a wheel, makes a venv, runs a search

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what the package is made of, links kept (a build in place leaves build/ behind)."""
    tree, out = tmp_path_factory.mktemp("tree"), tmp_path_factory.mktemp("dist")
    for name in ("src", "search", "pipeline", "conf"):
        shutil.copytree(
            REPO / name, tree / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(out),
        str(tree),
    ]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (found,) = out.glob("tunefleet-*.whl")
    return found


def test_the_wheel_installs_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top == {"tunefleet"}
    for inside in (
        "tunefleet/search/ray/backend.py",
        "tunefleet/search/cohorts/loop.py",
        "tunefleet/pipeline/cli.py",
        "tunefleet/conf/search.yaml",
        "tunefleet/conf/datasets/breast_cancer.yaml",
    ):
        assert inside in names, inside
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tunefleet = tunefleet.pipeline.cli:entry" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_command_runs_from_the_wheel_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    """The venv gets the wheel alone; the locked dependencies are this environment's, on its
    path as plain entries (not as a site dir, so that this checkout's editable install, a .pth
    file there, is not read): ``tunefleet`` can only come from the wheel."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    (site / "_locked_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (venv / "bin" / "tunefleet").write_text(f"#!{python}\nfrom tunefleet.pipeline.cli import entry\nentry()\n")
    (venv / "bin" / "tunefleet").chmod(0o755)
    work = tmp_path / "work"  # no conf/ here: the packaged conf is found
    work.mkdir()
    where = subprocess.run(
        [python, "-c", "import importlib.util as u, tunefleet; print(tunefleet.__file__, u.find_spec('search'), u.find_spec('pipeline'))"],
        cwd=work, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert where.stdout.split() == [str(site / "tunefleet" / "__init__.py"), "None", "None"]
    helped = subprocess.run(
        [venv / "bin" / "tunefleet", "--help"], cwd=work, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "usage: tunefleet" in helped.stdout
    searched = subprocess.run(
        [venv / "bin" / "tunefleet", "search", "sign", "--smoke", "--tracking-uri", f"sqlite:///{work}/mlruns.db"],
        cwd=work, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr[-3000:]
    assert "registered   tunefleet-sign-smoke version 1" in searched.stdout
