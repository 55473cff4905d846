"""A new SQLite store is a copy of a migrated one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _schema(db: Path) -> list[tuple[str, str, list[str]]]:
    """Every table and index with its definition's lines, sorted: MLflow's own migrations
    write a table's constraints in a varying order (two stores it made differ in that)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT type, name, COALESCE(sql, '') FROM sqlite_master").fetchall()
    return sorted(
        (kind, name, sorted(line.strip().rstrip(",") for line in sql.splitlines())) for kind, name, sql in rows
    )


def _revision(db: Path) -> list[tuple[str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT version_num FROM alembic_version"))


def test_a_seeded_store_equals_a_migrated_one_and_keeps_its_own_artifact_root(tmp_path, monkeypatch) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from tunefleet.pipeline.settings import TrackingSettings
    from tunefleet.pipeline.sqlite_seed import seed_new_store, template_path
    from tunefleet.pipeline.store import connect

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    reference = tmp_path / "reference.db"
    SqlAlchemyStore(f"sqlite:///{reference}", str(tmp_path / "ref-artifacts")).engine.dispose()  # MLflow's own

    for name in ("first", "second"):  # the first builds the template, the second copies it
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        db = tmp_path / name / "mlruns.db"  # absolute: MLflow caches a store per URI string
        client = connect(TrackingSettings(tracking_uri=f"sqlite:///{db}"))
        assert template_path().is_file()
        assert _schema(db) == _schema(reference) and _revision(db) == _revision(reference)
        default = client.get_experiment("0")
        assert default.name == "Default" and default.artifact_location == str(tmp_path / name / "mlruns" / "0")
        run = client.create_run(client.create_experiment("e"))
        client.log_metric(run.info.run_id, "m", 1.0)
        assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}

    assert not seed_new_store(f"sqlite:///{db}")  # an existing store is never replaced
    assert not seed_new_store("http://127.0.0.1:5000") and not seed_new_store("sqlite:///:memory:")


def test_a_seed_that_cannot_be_made_leaves_the_store_to_mlflow(tmp_path, monkeypatch) -> None:
    import sqlite3 as sqlite

    from tunefleet.pipeline import sqlite_seed
    from tunefleet.pipeline.settings import TrackingSettings
    from tunefleet.pipeline.store import connect

    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-dir"))  # the cache cannot be created
    assert not sqlite_seed.seed_new_store(f"sqlite:///{tmp_path / 'a.db'}")

    def broken(_: Path) -> None:
        raise sqlite.DatabaseError("disk image is malformed")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sqlite_seed, "_build_template", broken)
    db = tmp_path / "b.db"
    assert not sqlite_seed.seed_new_store(f"sqlite:///{db}") and not db.exists()
    client = connect(TrackingSettings(tracking_uri=f"sqlite:///{db}"))  # MLflow makes it itself
    assert client.get_experiment("0").name == "Default"
