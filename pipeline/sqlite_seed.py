"""A new SQLite tracking store starts as a copy of an empty, already migrated one.

MLflow creates a new SQLite store by running every one of its schema migrations: 3.5 s
of CPU here, on the critical path of every search in a new directory (and of most tests,
each in a directory of its own). The migrated result does not depend on where the file
is, so it is made once per MLflow version, in the user's cache, and copied.

The template holds the schema and Alembic's revision, but no experiment: MLflow creates
its ``Default`` experiment when it opens the copy, so the experiment's artifact location
is the new store's own, exactly as if MLflow had created the file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from tunefleet.fileio import written_whole

PREFIX = "sqlite:///"


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (None for anything else: a server, memory, URI options)."""
    if not uri.startswith(PREFIX) or "?" in uri or uri.endswith(":memory:"):
        return None
    return Path(uri[len(PREFIX) :])


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tunefleet"


def template_path() -> Path:
    import mlflow

    return cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"


def seed_new_store(uri: str) -> bool:
    """Copy the migrated template to a SQLite store that does not exist yet; True when it did.

    Anything in the way (a read-only cache, a missing directory, a failed build) leaves
    the store to MLflow, which then migrates the new file itself, as it always did.
    """
    target = sqlite_file(uri)
    if target is None or target.exists() or not target.parent.is_dir():
        return False
    try:
        template = template_path()
        if not template.is_file():
            _build_template(template)
        with written_whole(target) as part:  # a store that appears is whole
            shutil.copyfile(template, part)
    except Exception:  # noqa: BLE001 - only a shortcut: a failed build or copy (disk, SQLite) leaves the store to MLflow
        return False
    return True


def _build_template(template: Path) -> None:
    """Let MLflow migrate an empty file, drop the experiment it created, publish it whole.

    Two processes building at once each publish a whole file; either one wins.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    template.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(template) as db:
        # MLflow creates no artifact directory until an artifact is logged, and none is
        store = SqlAlchemyStore(f"{PREFIX}{db}", str(template.parent / "unused-artifacts"))
        store.engine.dispose()
        conn = sqlite3.connect(db)
        try:
            with conn:  # one transaction
                conn.execute("DELETE FROM experiment_tags")
                conn.execute("DELETE FROM experiments")
        finally:
            conn.close()
