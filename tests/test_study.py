"""The study on disk: Optuna's journal, locked and synced once per batch, and the trial records beside it."""

from __future__ import annotations

import optuna
import pytest

from tunefleet.search.experiment import load_experiment


@pytest.mark.timeout(60)
def test_a_killed_drivers_journal_lock_does_not_block_the_resume(tmp_path, monkeypatch) -> None:
    """A driver killed mid-append leaves Optuna's lock symlink behind; with a relative storage
    path (the default) the link dangles and Optuna would wait on it forever. Opening clears it."""
    import os
    import time
    from pathlib import Path

    from tunefleet.search.study import open_study

    monkeypatch.chdir(tmp_path)
    exp = load_experiment("sign", overrides=["search.storage_path=runs"])
    path = Path("runs") / "killed"
    open_study(exp, path).ask()
    lock = path / "optuna.journal.lock"
    os.symlink("runs/killed/optuna.journal", lock)  # what the killed driver left: relative, dangling
    then = time.time() - 60
    os.utime(lock, (then, then), follow_symlinks=False)
    started = time.monotonic()
    study = open_study(exp, path)
    study.ask()
    assert time.monotonic() - started < 10 and not lock.is_symlink()
    assert len(study.trials) == 2  # the first driver's trial is still there (marked failed) and a new one


def test_a_batch_of_study_writes_is_locked_and_synced_once_and_visible_at_once(tmp_path, monkeypatch) -> None:
    """Asking configs writes the journal ~10 times each; in ``one_sync`` they take Optuna's
    lock once, hold it through the batch, reach the disk with one fsync, and another reader
    sees every write before it."""
    import os

    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    from tunefleet.search.study import JOURNAL, one_sync, open_study

    exp = load_experiment("sign", overrides=[f"search.storage_path={tmp_path}"])
    study = open_study(exp, tmp_path / "batch")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    locks: list[str] = []
    real_acquire, real_release = JournalFileSymlinkLock.acquire, JournalFileSymlinkLock.release
    monkeypatch.setattr(JournalFileSymlinkLock, "acquire", lambda self: (locks.append("+"), real_acquire(self))[1])
    monkeypatch.setattr(JournalFileSymlinkLock, "release", lambda self: (locks.append("-"), real_release(self))[1])
    lock = tmp_path / "batch" / (JOURNAL + ".lock")
    with one_sync(study):
        for _ in range(3):
            study.ask().suggest_float("lr", 1e-4, 1e-1, log=True)
        assert synced == [] and locks == ["+"] and lock.is_symlink()  # another writer waits for the batch
        reader = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "batch" / JOURNAL)))
        assert len(optuna.load_study(study_name="tunefleet", storage=reader).trials) == 3
    assert len(synced) == 1 and locks == ["+", "-"] and not lock.is_symlink()
    study.ask()  # outside a batch, Optuna's own lock and fsync per write
    assert len(synced) > 1 and len(locks) > 2


def test_a_failed_batch_releases_the_journal_lock(tmp_path) -> None:
    """A batch that raises (a cohort's record that cannot be saved) leaves no lock behind
    for the resume to wait on."""
    from tunefleet.search.study import JOURNAL, one_sync, open_study

    exp = load_experiment("sign", overrides=[f"search.storage_path={tmp_path}"])
    study = open_study(exp, tmp_path / "batch")
    with pytest.raises(RuntimeError, match="mid-batch"), one_sync(study):
        study.ask()
        raise RuntimeError("mid-batch")
    assert not (tmp_path / "batch" / (JOURNAL + ".lock")).is_symlink()
    assert len(study.trials) == 1


def test_a_record_is_saved_whole_or_not_at_all(tmp_path, monkeypatch) -> None:
    """A driver killed while saving a trial's record must not leave a file the resume cannot
    read (seen in CI: an empty ``trial_*.json``); the kill is a write that stops half-way."""
    from pathlib import Path

    from tunefleet.search.result import TrialRecord
    from tunefleet.search.study import load_records, save_record
    from tunefleet.train_config import TrainConfig

    done = TrialRecord("trial_00000", {"lr": 0.1}, TrainConfig(), "finished", metrics={"val_loss": 0.5})
    save_record(tmp_path, done)
    real_write = Path.write_text

    def killed_half_way(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real_write(self, text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_record(tmp_path, TrialRecord("trial_00001", {"lr": 0.2}, TrainConfig(), "finished"))
    monkeypatch.undo()
    assert [r.trial_id for r in load_records(tmp_path)] == ["trial_00000"]  # the half-written one runs again
