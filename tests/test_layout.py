"""The layout rules, read from the source: imports point pipeline -> search -> tunefleet, no
import cycles between modules, and no module over 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"tunefleet": REPO / "src" / "tunefleet", "search": REPO / "search", "pipeline": REPO / "pipeline"}
LAYER = {"tunefleet": 0, "search": 1, "pipeline": 2}
MAX_LINES = 300


def _modules() -> dict[str, Path]:
    return {
        f"{pkg}.{path.stem}" if path.stem != "__init__" else pkg: path
        for pkg, root in PACKAGES.items()
        for path in sorted(root.glob("*.py"))
    }


def _imports(path: Path) -> set[str]:
    """Project modules imported anywhere in the file (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


def test_imports_point_down_only() -> None:
    modules = _modules()
    upward = [
        f"{name} imports {imported}"
        for name, path in modules.items()
        for imported in _imports(path)
        if LAYER[imported.split(".")[0]] > LAYER[name.split(".")[0]]
    ]
    assert upward == []


def test_no_import_cycles_between_modules() -> None:
    modules = _modules()
    graph = {name: {i for i in _imports(path) if i in modules and i != name} for name, path in modules.items()}
    # a package's __init__ re-exports its modules; its edges are the package's face, not a cycle
    graph = {n: {i for i in deps if i not in PACKAGES} for n, deps in graph.items() if n not in PACKAGES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_no_module_over_300_lines() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in _modules().values()}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}
    assert len(sizes) > 40  # the walk found the packages


def test_commands_that_train_nothing_do_not_import_torch(tmp_path: Path) -> None:
    """``--help``, ``datasets``, a search that fails on its input (spec, file or target
    column) and a prediction without its input file answer without torch's ~3 s import:
    the core package loads its names lazily, a search checks its spec and loads its data
    before importing the lifecycle, and ``predict`` reads its input before MLflow connects."""
    import subprocess
    import sys

    script = """
import sys
from tunefleet.pipeline.cli import main
codes = [main(argv) for argv in (
    ["datasets"],
    ["search", "nosuch"],
    ["search", "sign", "--set", "search.nope=1"],
    ["search", "--data", "missing.csv", "--target", "y"],
    ["search", "--data", "rows.csv", "--target", "nope"],
    ["predict", "models:/any@champion", "--input", "missing.csv"],
)]
try:
    main(["--help"])
except SystemExit as done:
    codes.append(done.code)
print(codes, sorted(m for m in ("torch", "mlflow", "ray", "sklearn") if m in sys.modules))
"""
    (tmp_path / "rows.csv").write_text("a,y\n1,0\n2,1\n")
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "[0, 2, 2, 2, 2, 2, 0] []", proc.stdout + proc.stderr


def test_a_cohort_worker_imports_only_what_training_needs(tmp_path: Path, breast_cancer_data) -> None:
    """What a Ray worker imports to train a cohort (its module, the job and the data as Ray
    hands them over, then ``run_cohort``) is torch and the core: not scipy (0.3-0.4 CPU-s,
    once for a sigmoid), not the search spec and its dataset catalog, and none of the
    driver's libraries. Every slot pays its worker's imports before its first cohort."""
    import pickle
    import subprocess
    import sys

    from tunefleet.search.cohorts.runner import CohortJob
    from tunefleet.train_config import TrainConfig

    configs = tuple(TrainConfig(hidden_widths=w, epochs=2, seed=i) for i, w in enumerate([(8,), (16,)]))
    job = CohortJob("c0", ("t0", "t1"), configs, "val_roc_auc")
    assert len(breast_cancer_data.y_val) >= 30  # so the temperature is fitted: calibration runs
    (tmp_path / "task.pkl").write_bytes(pickle.dumps((job, breast_cancer_data)))
    script = """
import pickle, sys
from tunefleet.search.cohorts.runner import run_cohort
job, data = pickle.load(open("task.pkl", "rb"))
outcomes = run_cohort(job, data, None)
heavy = ("scipy", "tunefleet.search.experiment", "tunefleet.catalog", "sklearn", "pandas", "mlflow", "optuna", "matplotlib")
print([o.status for o in outcomes], sorted(m for m in heavy if m in sys.modules), "torch" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "['finished', 'finished'] [] True", proc.stdout + proc.stderr
