"""The fast suite imports neither Ray nor MLflow: a run that selects no ``integration`` or ``slow``
test (plain ``pytest``, ``make test-fast``) refuses their import, naming the test's remedy.

Both cost seconds to import and start processes of their own; a test that needs them is an
integration test. A test file marked integration or slow as a whole (``pytestmark``) is not
even imported by such a run. ``tests/test_fast_suite.py`` runs the fast suite under this guard.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest

BLOCKED = frozenset({"ray", "mlflow"})


class ImportGuard(MetaPathFinder):
    """Refuses the first import of a blocked top-level package (a module already imported is not asked again)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError(
                f"the fast suite imports no {fullname.split('.')[0]}: mark the test that imports it "
                "@pytest.mark.integration, or keep the import out of the code path it tests"
            )
        return None


def fast_run(markexpr: str) -> bool:
    """Whether ``-m markexpr`` deselects every test marked integration or slow (the fast suite)."""
    from _pytest.mark.expression import Expression

    if not markexpr:
        return False
    expr = Expression.compile(markexpr)

    def marked(*names: str) -> bool:
        return expr.evaluate(lambda name, **kwargs: name in names)

    return not marked("integration") and not marked("slow") and not marked("integration", "slow")


def pytest_configure(config: pytest.Config) -> None:
    if fast_run(config.getoption("markexpr") or "") and not BLOCKED & set(sys.modules):
        sys.meta_path.insert(0, ImportGuard())
        config.stash[GUARDED] = True


def marked_whole(path: Path) -> bool:
    """Whether a test file's module-level ``pytestmark`` marks it integration or slow."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            names = {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)}
            return bool(names & {"integration", "slow"})
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if (
        config.stash.get(GUARDED, False)
        and collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
    ):
        return True if marked_whole(collection_path) else None
    return None


def pytest_report_header(config: pytest.Config) -> str | None:
    return (
        f"import guard: {', '.join(sorted(BLOCKED))} refused (the fast suite)"
        if config.stash.get(GUARDED, False)
        else None
    )


GUARDED = pytest.StashKey[bool]()
