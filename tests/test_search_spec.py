"""Search-space files: loading, overrides, and one-line errors for every bad case."""

from __future__ import annotations

import optuna
import pytest

from pipeline.cli import build_parser
from pipeline.commands import flag_values
from search.space import SpaceSampler
from search.spec import hidden_widths, load_experiment
from tunefleet.catalog import catalog_names
from tunefleet.errors import ConfigError, TunefleetError

LOADERS = {
    "breast_cancer": "breast_cancer",
    "mnist": "mnist",
    "sign": "sign",
    "student_hours": "student_hours",
    "threshold_1d": "threshold_1d",
}


def test_the_catalog_is_the_dataset_files() -> None:
    assert catalog_names() == sorted(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_dataset_file_loads(name: str) -> None:
    exp = load_experiment(name)
    assert exp.name == name and exp.dataset.loader == LOADERS[name] and exp.search.num_samples == 24


def test_dataset_file_overrides_defaults() -> None:
    bc, mnist = load_experiment("breast_cancer"), load_experiment("mnist")
    assert (bc.metric, bc.mode) == ("val_roc_auc", "max") and (mnist.metric, mnist.mode) == ("val_accuracy", "max")
    assert mnist.search.scheduler.grace_period == 2 and mnist.search.scheduler.reduction_factor == 3  # merged
    assert mnist.space.batch_size.values == [64, 128, 256] and mnist.space.lr == bc.space.lr


def test_overrides_and_smoke() -> None:
    exp = load_experiment(
        "breast_cancer", overrides=["search.num_samples=64", "space.lr.high=0.5", "space.batch_size.values=[8, 16]"]
    )
    assert exp.search.num_samples == 64 and exp.space.lr.high == 0.5 and exp.space.batch_size.values == [8, 16]
    smoke = load_experiment("breast_cancer", smoke=True)
    assert smoke.search.num_samples == 4 and smoke.space.max_epochs() <= 6


def test_user_file_gets_defaults(tmp_path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("a,b,y\n1,2,0\n")
    exp = load_experiment(data_file=str(path), target="y")
    assert (
        exp.name == "mine" and exp.dataset.loader == "csv" and exp.dataset.options == {"path": str(path), "target": "y"}
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("space.lrr={type: uniform, low: 0, high: 1}", r"space\.lrr: unknown key"),
        ("search.num_sample=3", r"search\.num_sample: unknown key"),
        ("search.num_samples=lots", r"search\.num_samples: Input should be a valid integer"),
        ("space.lr.low=0.9", r"space\.lr: .*low \(0\.9\) is above high \(0\.3\)"),
        ("space.batch_size.values=[]", r"space\.batch_size: .*non-empty 'values'"),
        ("metric=val_accuracyy", r"metric 'val_accuracyy' is never reported"),
        ("space.lr.type=normal", r"space\.lr\.type: Input should be 'loguniform'"),
        ("train.lr=0.1", r"train\.lr is searched"),
        ("train.pateince=3", r"train\.pateince: unknown key"),
        ("search.scheduler.name=hyperband", r"search\.scheduler\.name"),
        ("nonsense", r"must look like key\.path=value"),
        # values a trial's TrainConfig would refuse: refused here, before Ray starts (they were
        # tracebacks from the cohorts' sizing, or one failed trial after another)
        (
            "space.batch_size.values=[0, 8]",
            r"batch_size: this space gives it 0, which a trial refuses \(.*greater than or equal to 1\)$",
        ),
        (
            "space.batch_size.values=[a]",
            r"batch_size: this space gives it 'a', which a trial refuses \(.*valid integer.*\)$",
        ),
        (
            "space.width.values=[8, 0.5]",
            r"width: this space gives it 0\.5, which a trial refuses \(.*valid integer.*\)$",
        ),
        ("space.width.values=[8, 0]", r"width: this space gives it 0, which a trial refuses \(.*greater than 0\)$"),
        ("space.momentum.high=1.5", r"momentum: this space gives it 1\.5, which a trial refuses \(.*less than 1\)$"),
        (
            "space.optimizer.values=[rmsprop]",
            r"optimizer: this space gives it 'rmsprop', which a trial refuses \(.*'sgd' or 'adam'\)$",
        ),
        (
            "space.epochs.low=0",
            r"epochs: this space gives it 0, which a trial refuses \(.*greater than or equal to 1\)$",
        ),
        (
            "space.n_layers.low=-1",
            r"n_layers: this space gives it -1, which a trial refuses \(.*greater than or equal to 0\)$",
        ),
        ("space.threshold.low=0", r"threshold: this space gives it 0, which a trial refuses \(.*greater than 0\)$"),
    ],
)
def test_bad_search_space_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_experiment("breast_cancer", overrides=[override])
    assert "\n" not in str(err.value)


def test_metric_checked_against_task() -> None:
    exp = load_experiment("mnist", overrides=["metric=val_roc_auc"])
    with pytest.raises(ConfigError, match="metric: 'val_roc_auc' is not reported for multiclass"):
        exp.check_task("multiclass")


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("bogus", "unknown backend 'bogus'; use one of: optuna, ray$"),
        ("cohort", "unknown backend 'cohort'; use one of: optuna, ray; cohorts are chosen by --cohort-size K"),
    ],
)
def test_a_search_names_a_backend_trials_run_on(tmp_path, backend: str, message: str) -> None:
    """`search.backend: cohort` (the cohort driver's name) is refused in one line; it recursed."""
    from search.driver import check_search

    exp = load_experiment("sign", values={"search.backend": backend, "search.storage_path": str(tmp_path)})
    with pytest.raises(ConfigError, match=message):
        check_search(exp, exp.load())
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_unknown_dataset_and_missing_target() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'iris'.*known: breast_cancer"):
        load_experiment("iris")
    with pytest.raises(ConfigError, match="--data needs --target"):
        load_experiment(data_file="x.csv")


def _sample(exp, n: int, search_threshold: bool = False) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampler = SpaceSampler(exp.space, search_threshold)
    out = []
    for _ in range(n):
        trial = study.ask()
        sampler(trial)
        out.append(dict(trial.params))
        study.tell(trial, 0.0)
    return out


def test_variable_length_widths_space() -> None:
    exp = load_experiment("breast_cancer")
    params = _sample(exp, 60)
    depths = {len(hidden_widths(p)) for p in params}
    assert depths == {0, 1, 2}
    for p in params:
        cfg = exp.trial_config(p)
        assert len(cfg.hidden_widths) == p["n_layers"] and cfg.lr == p["lr"] and cfg.seed == exp.search.seed
        assert ("momentum" in p) == (p["optimizer"] == "sgd")  # conditional parameter
        assert "threshold" not in p


def test_threshold_search_mode_samples_threshold() -> None:
    exp = load_experiment("breast_cancer", overrides=["threshold.mode=search"])
    params = _sample(exp, 5, search_threshold=True)
    for p in params:
        cfg = exp.trial_config(p)
        assert cfg.threshold.mode == "search" and cfg.threshold.value == p["threshold"]
        assert 0.05 <= p["threshold"] <= 0.95


def test_typed_flags_are_set_as_they_are_not_reparsed() -> None:
    args = build_parser().parse_args(
        ["search", "sign", "--storage-path", "2024", "--trials", "3", "--set", "search.seed=7"]
    )
    exp = load_experiment("sign", overrides=args.overrides, values=flag_values(args))
    assert exp.search.storage_path == "2024" and exp.search.num_samples == 3 and exp.search.seed == 7


def test_trial_config_carries_the_fixed_train_settings() -> None:
    exp = load_experiment("breast_cancer", overrides=["train.patience=4", "search.resources.cpus_per_trial=2"])
    params = _sample(exp, 1)[0]
    cfg = exp.trial_config(params)
    assert cfg.patience == 4 and cfg.torch_threads == 2 and cfg.threshold.objective == exp.threshold.objective


@pytest.mark.timeout(60)
def test_a_killed_drivers_journal_lock_does_not_block_the_resume(tmp_path, monkeypatch) -> None:
    """A driver killed mid-append leaves Optuna's lock symlink behind; with a relative storage
    path (the default) the link dangles and Optuna would wait on it forever. Opening clears it."""
    import os
    import time
    from pathlib import Path

    from search.study import open_study

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

    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    from search.study import JOURNAL, one_sync, open_study

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
    from search.study import JOURNAL, one_sync, open_study

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

    from search.result import TrialRecord
    from search.study import load_records, save_record
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


def test_a_local_ray_that_misses_its_start_wait_is_started_once_more() -> None:
    """Ray gives a new node a fixed 30 s to register; a loaded machine can miss it once.
    (Ray's own start cannot be made slow on demand, so a stand-in raises its exact error.)"""
    from search.cluster import SLOW_START, _init

    class SlowOnce:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def init(self, **_: object) -> None:
            self.calls.append("init")
            if self.calls.count("init") == 1:
                raise Exception(f"The current node {SLOW_START}. This could happen because ...")

        def shutdown(self) -> None:
            self.calls.append("shutdown")

    local = SlowOnce()
    _init(local, {}, retry_slow_start=True)
    assert local.calls == ["init", "shutdown", "init"]
    remote = SlowOnce()
    with pytest.raises(Exception, match=SLOW_START):  # an address given: no second start, the error stands
        _init(remote, {}, retry_slow_start=False)
    assert remote.calls == ["init"]


def test_progress_lines_show_a_dash_until_a_trial_finishes(capsys) -> None:
    """Stopped trials do not count for ``best``: before the first finished one it reads "-", not "nan"."""
    from search.result import ProgressPrinter, TrialRecord
    from tunefleet.train_config import TrainConfig

    printer = ProgressPrinter("val_roc_auc", "max", total=3)
    for trial_id, status, value in [("t0", "stopped", 0.91), ("t1", "finished", 0.95), ("t2", "finished", 0.93)]:
        printer.on_trial_end(TrialRecord(trial_id, {}, TrainConfig(), status, metrics={"val_roc_auc": value}))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("best=")[1].split()[0] for line in lines] == ["-", "0.9500", "0.9500"]
    assert "val_roc_auc=0.9100" in lines[0] and "nan" not in "".join(lines)


@pytest.mark.parametrize(
    ("values", "name", "message"),
    [
        ({}, "a/b", "search name 'a/b' must be a plain name, without '/'"),
        ({}, "..", "search name '..' must be a plain name"),
        ({"search.storage_path": "/proc/no-such-dir"}, None, "cannot make /proc/no-such-dir .*writable --storage-path"),
    ],
)
def test_a_search_name_and_storage_path_are_checked_before_anything_starts(
    tmp_path, values: dict, name: str | None, message: str
) -> None:
    """They failed after Ray and the tracking store had started (a traceback, a failed parent
    run), or wrote the search's state outside the storage path (`--name ../x`)."""
    from search.driver import check_search

    exp = load_experiment("sign", values={"search.storage_path": str(tmp_path / "runs"), **values})
    with pytest.raises(TunefleetError, match=message):
        check_search(exp, exp.load(), name=name)
    assert not any(tmp_path.iterdir())


def test_a_tracking_store_and_model_name_mlflow_would_refuse_late_are_refused_at_once() -> None:
    """A file store or another scheme failed inside MLflow, and a model name with '/' or ':'
    at registration, after the whole search."""
    from pipeline.settings import load_tracking_settings

    for uri in ("sqlite:///mlruns.db", "postgresql+psycopg2://u:p@db/mlflow", "http://127.0.0.1:5000", "databricks"):
        assert load_tracking_settings(uri).tracking_uri == uri
    with pytest.raises(ConfigError, match="'./mlruns' is a file store.*sqlite:///mlruns.db"):
        load_tracking_settings("./mlruns")
    with pytest.raises(ConfigError, match="and --tracking-uri: tracking_uri: .*unsupported scheme 'ftp'"):
        load_tracking_settings("ftp://host/x")
    settings = load_tracking_settings("sqlite:///mlruns.db")
    assert settings.model_name("sign") == "tunefleet-sign" and settings.model_name("sign", "mine") == "mine"
    for bad in ("team/model", "a:b", " "):
        with pytest.raises(ConfigError, match="must not be empty or hold '/' or ':'"):
            settings.model_name("sign", bad)
    with pytest.raises(ConfigError, match="'tunefleet-data:v2'"):
        settings.model_name("data:v2")  # a file's stem becomes the default name


def test_a_time_budget_that_no_trial_finished_in_says_so() -> None:
    """Not "every trial's error is tagged on the child runs", when no trial failed and none ran through."""
    from pipeline.lifecycle import _best_and_test
    from search import SearchResult

    exp = load_experiment("sign", values={"search.time_budget_s": 0.5})
    empty = SearchResult(exp, exp.load(), "ray", "s", exp.search.storage_path, [], 0.5, None, None)
    with pytest.raises(TunefleetError, match=r"no trial finished within --time-budget 0.5 s .* give it more seconds"):
        _best_and_test(empty, "run")
    no_budget = SearchResult(exp.model_copy(update={"search": exp.search.model_copy(update={"time_budget_s": None})}),
                             empty.data, "ray", "s", empty.path, [], 0.5, None, None)  # fmt: skip
    with pytest.raises(TunefleetError, match="no trial finished .*tagged on the child runs"):
        _best_and_test(no_budget, "run")


def test_commands_that_read_a_store_refuse_a_missing_one_without_making_it(tmp_path, capsys) -> None:
    """MLflow made an empty SQLite file at a mistyped path (seconds of migrations), then said "not found"."""
    from pipeline.cli import main

    db, rows = tmp_path / "typo.db", tmp_path / "rows.csv"
    rows.write_text("x\n1.0\n")
    for argv in (["models"], ["promote", "m", "1"], ["ui"], ["predict", "models:/m@champion", "--input", str(rows)]):
        assert main([*argv, "--tracking-uri", f"sqlite:///{db}"]) == 2, argv
        assert capsys.readouterr().err.strip().splitlines() == [
            f"error: no tracking store at sqlite:///{db}: {db} does not exist; run this where the search ran, "
            "or pass --tracking-uri / MLFLOW_TRACKING_URI"
        ]
    assert not db.exists()


def test_a_user_files_spec_error_names_the_file_and_the_problem_only(tmp_path) -> None:
    """It named conf/datasets/rows.yaml, which does not exist, and said "<root>: Value error, ..."."""
    path = tmp_path / "rows.csv"
    path.write_text("a,y\n" + "\n".join(f"{i},{i % 2}" for i in range(12)))
    with pytest.raises(ConfigError) as err:
        load_experiment(data_file=str(path), target="y", values={"split.cv_folds": 3, "search.cohort_size": 4})
    assert str(err.value).startswith(f"--data {path} (merged with conf/search.yaml and overrides): a cross-validated")
    assert "Value error" not in str(err.value) and "<root>" not in str(err.value)
