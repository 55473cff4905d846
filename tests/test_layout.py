"""The layout rules, read from the source: imports point pipeline -> search -> tunefleet, no
import cycles between modules, and no module over 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Each layer's folder and its installed name (src/tunefleet links search/ and pipeline/ in).
LAYERS = {
    "tunefleet": REPO / "src" / "tunefleet",
    "tunefleet.search": REPO / "search",
    "tunefleet.pipeline": REPO / "pipeline",
}
LAYER = {"tunefleet": 0, "tunefleet.search": 1, "tunefleet.pipeline": 2}
MAX_LINES = 300


def _layer(module: str) -> str:
    """The layer a module of the package belongs to: its longest layer-name prefix."""
    return max((name for name in LAYER if module == name or module.startswith(name + ".")), key=len)


def _modules() -> dict[str, Path]:
    """Every module of the package by its installed name (files under links are read once, at their folder)."""
    found = {}
    for pkg, root in LAYERS.items():
        for path in sorted(root.rglob("*.py")):
            if pkg == "tunefleet" and path.relative_to(root).parts[0] in ("search", "pipeline"):
                continue  # the links: read at search/ and pipeline/
            parts = [*pkg.split("."), *path.relative_to(root).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    """Modules imported anywhere in the file (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= set(names)
    return found


def _project_imports(path: Path) -> set[str]:
    return {n for n in _imports(path) if n.split(".")[0] == "tunefleet"}


def test_one_installed_name_no_import_of_a_bare_search_or_pipeline() -> None:
    """The folders search/ and pipeline/ are tunefleet.search and tunefleet.pipeline: importing them
    bare works from the repository's root only, and would load a second copy of every module."""
    everywhere = [
        *_modules().values(),
        *REPO.glob("tests/*.py"),
        *REPO.glob("benchmarks/*.py"),
        *REPO.glob("docker/*.py"),
    ]
    bare = sorted(
        f"{path.relative_to(REPO)} imports {name}"
        for path in everywhere
        for name in _imports(path)
        if name.split(".")[0] in ("search", "pipeline")
    )
    assert bare == []


def test_imports_point_down_only() -> None:
    upward = [
        f"{name} imports {imported}"
        for name, path in _modules().items()
        for imported in _project_imports(path)
        if LAYER[_layer(imported)] > LAYER[_layer(name)]
        and not name.endswith("__main__")  # `python -m tunefleet` runs the command: an entry point nothing imports
    ]
    assert upward == []


def test_no_import_cycles_between_modules() -> None:
    modules = _modules()
    graph = {name: {i for i in _project_imports(path) if i in modules and i != name} for name, path in modules.items()}
    # a package's __init__ re-exports its modules; its edges are the package's face, not a cycle
    faces = {name for name, path in modules.items() if path.name == "__init__.py"}
    graph = {n: {i for i in deps if i not in faces} for n, deps in graph.items() if n not in faces}
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
    assert len(sizes) > 70 and "search/ray/backend.py" in sizes  # the walk found the packages and the wings


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

    from tunefleet.search.cohort_jobs import CohortJob, TrialJob
    from tunefleet.train_config import TrainConfig

    trials = tuple(
        TrialJob(f"t{i}", TrainConfig(hidden_widths=w, epochs=2, seed=i)) for i, w in enumerate([(8,), (16,)])
    )
    job = CohortJob("c0", trials, widest=16)
    assert len(breast_cancer_data.y_val) >= 30  # so the temperature is fitted: calibration runs
    (tmp_path / "task.pkl").write_bytes(pickle.dumps((job, breast_cancer_data)))
    script = """
import pickle, sys
from tunefleet.search.cohort_jobs import run_cohort
job, data = pickle.load(open("task.pkl", "rb"))
outcomes = run_cohort(job, data, None)
heavy = ("scipy", "tunefleet.search.experiment", "tunefleet.catalog", "sklearn", "pandas", "mlflow", "optuna", "matplotlib")
print([o.status for o in outcomes], sorted(m for m in heavy if m in sys.modules), "torch" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "['finished', 'finished'] [] True", proc.stdout + proc.stderr
