"""An Optuna study on disk, shared by the one-process backend and the cohort backend.

The study lives in ``<storage>/<name>/optuna.journal`` (an append-only journal:
resumable like SQLite, without a commit per report) and each ended trial's record in
``trials/<trial id>.json``, so a killed driver resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import optuna
from optuna.storages.journal import JournalFileBackend

from tunefleet.fileio import written_whole
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import SearchObserver, TrialRecord, tell_observers

JOURNAL = "optuna.journal"
STALE_LOCK_S = 5.0  # a journal append holds the lock for milliseconds


def clear_stale_lock(journal: Path) -> bool:
    """Remove the journal's lock when a killed driver left it behind; True if there was one.

    Optuna locks the journal with a symlink for each append. A driver killed during an
    append leaves the link, and the next driver waits for it; with a relative storage
    path the link even dangles, and Optuna's wait then never ends (its stale-lock check
    stats the link's target). Only one driver runs a search, and an append takes
    milliseconds, so a lock older than a few seconds at open is stale.
    """
    lock = journal.with_name(journal.name + ".lock")
    try:
        age = time.time() - lock.lstat().st_mtime
    except FileNotFoundError:
        return False
    if age < STALE_LOCK_S:
        time.sleep(STALE_LOCK_S - age)  # a live writer would have released it by then
        if not lock.is_symlink() and not lock.exists():
            return False
    lock.unlink(missing_ok=True)
    return True


class Journal(JournalFileBackend):
    """Optuna's journal file, locked and synced to disk once per batch of writes (:func:`one_sync`).

    Optuna locks the file (a symlink made and removed: three metadata writes) and fsyncs
    it for every write, and asking one config is ~10 writes (the trial, each parameter).
    An ask of 32 took 0.05 s alone, but 0.8-1.1 s in a search, where those metadata
    writes waited on a disk busy with MLflow's store and the imports beside it, while
    every slot waited for its cohort. A batch takes the lock once, keeps the file open,
    and syncs it once at its end. Each write still reaches the OS at once (a killed
    driver loses nothing; other processes see it), and another writer waits for the
    batch as it would for one write. Only a machine crash within a batch could lose its
    tail, as it could the trial records, which are not fsynced either; resume counts the
    records, so such trials would run again. Outside a batch it is Optuna's backend
    unchanged; inside, its ``append_logs`` without the lock, the open and the fsync
    (Optuna 5.0, pinned in constraints.txt).
    """

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._batch: BinaryIO | None = None

    @property
    def batched(self) -> bool:
        return self._batch is not None

    def begin(self) -> None:
        self._lock.acquire()
        try:
            self._batch = open(self._file_path, "ab")  # noqa: SIM115 - closed by end()
        except BaseException:
            self._lock.release()
            raise

    def end(self) -> None:
        assert self._batch is not None
        try:
            os.fsync(self._batch.fileno())
        finally:
            self._batch.close()
            self._batch = None
            self._lock.release()

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if self._batch is None:
            super().append_logs(logs)
            return
        self._batch.write("".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8"))
        self._batch.flush()


_journals: weakref.WeakKeyDictionary[optuna.Study, Journal] = weakref.WeakKeyDictionary()


@contextmanager
def one_sync(study: optuna.Study) -> Iterator[None]:
    """The study's writes in this block take the journal's lock once and reach the disk with one
    fsync at its end (see :class:`Journal`)."""
    journal = _journals.get(study)
    if journal is None or journal.batched:  # not a journal study, or in a batch already
        yield
        return
    journal.begin()
    try:
        yield
    finally:
        journal.end()


def sampler_of(exp: ExperimentConfig, constant_liar: bool = False, startup: int = 10) -> optuna.samplers.BaseSampler:
    """``search.sampler``: seeded TPE (random for its first ``startup`` trials; ``constant_liar``: trials asked but
    not told count as bad, so configs asked together spread out), or seeded random search (to measure TPE by)."""
    if exp.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=exp.search.seed)
    return optuna.samplers.TPESampler(seed=exp.search.seed, constant_liar=constant_liar, n_startup_trials=startup)


def open_study(exp: ExperimentConfig, path: Path, *, constant_liar: bool = False, startup: int = 10) -> optuna.Study:
    """Create or load the search's study; trials a killed driver left running are marked failed (and re-run)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.mkdir(parents=True, exist_ok=True)
    journal = (path / JOURNAL).resolve()  # absolute: Optuna's lock is a symlink to it
    clear_stale_lock(journal)
    backend = Journal(str(journal))
    study = optuna.create_study(
        study_name="tunefleet",
        storage=optuna.storages.JournalStorage(backend),
        load_if_exists=True,
        direction="maximize" if exp.mode == "max" else "minimize",
        sampler=sampler_of(exp, constant_liar, startup),
        pruner=optuna.pruners.NopPruner(),  # trials are judged by the search's schedule (search.schedule)
    )
    for stale in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
    _journals[study] = backend
    return study


def has_study(storage_path: str, name: str) -> bool:
    return (Path(storage_path).expanduser() / name / JOURNAL).is_file()


def seed_study(
    study: optuna.Study,
    points: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    warm: tuple[optuna.trial.FrozenTrial, ...] = (),
) -> None:
    """Only when the study is new: earlier searches' trials (warm start), then fixed configs to evaluate first."""
    if not study.trials:
        study.add_trials(list(warm))
        for point in points:
            study.enqueue_trial(point)


def save_record(path: Path, record: TrialRecord) -> None:
    """Write the record whole or not at all (:func:`tunefleet.fileio.written_whole`).

    A driver killed mid-write (seen in CI: the killed-driver test) left an empty
    ``trial_*.json`` that the resumed search could not read; now the trial has no record
    and runs again.
    """
    target = path / "trials" / f"{record.trial_id}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(target) as part:
        part.write_text(record.to_json())


def load_records(path: Path) -> list[TrialRecord]:
    return [TrialRecord.from_json(p.read_text()) for p in sorted((path / "trials").glob("*.json"))]


def ended_before(path: Path, observers: Sequence[SearchObserver]) -> list[TrialRecord]:
    """The records of trials that ended before a restart, told to the observers again.

    A record is saved before the observers hear of it, so a driver killed in between
    leaves a trial that ended but never reached MLflow; telling every saved record again
    on resume closes that gap (the tracker skips what it has already logged).
    """
    records = load_records(path)
    tell_observers(observers, records)
    return records


def tell(study: optuna.Study, trial: optuna.Trial, record: TrialRecord, metric: str) -> None:
    """Tell the sampler how a trial ended (a stopped trial's last value was reported to it before this)."""
    if record.status == "finished":
        study.tell(trial, record.metric(metric))
    elif record.status == "stopped":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
