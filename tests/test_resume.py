"""Which search a command runs: new names, resumable names, and what is refused before anything starts."""

from __future__ import annotations

import json
import os
import time

import pytest

from tunefleet.errors import TunefleetError
from tunefleet.search import run_search
from tunefleet.search.experiment import load_experiment
from tunefleet.search.resume import SPEC_FILE, latest_name, new_name, resolve_search


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
    from tunefleet.search.run import check_search

    exp = load_experiment("sign", values={"search.storage_path": str(tmp_path / "runs"), **values})
    with pytest.raises(TunefleetError, match=message):
        check_search(exp, exp.load(), name=name)
    assert not any(tmp_path.iterdir())


def _exp(tmp_path, **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    return load_experiment("breast_cancer", smoke=True, values={**base, **values})


def test_resume_refuses_another_search_before_anything_starts(tmp_path) -> None:
    """``--resume`` without the ``--smoke`` a search started with (another space) is refused in
    one line naming the first key that differs, as is a resume on other data (another split
    hash) and a name that left no state."""

    smoke = _exp(tmp_path, **{"search.num_samples": 2, "search.scheduler.name": "none"})
    first = run_search(smoke, name="breast_cancer-started", progress=False)
    assert (first.path / SPEC_FILE).is_file()
    smoke = smoke.fitted(first.data)  # as check_search compares it: its space fitted to the data
    split = first.data.split_hash
    assert resolve_search(smoke, "breast_cancer-started", True, split) == "breast_cancer-started"  # the same search
    assert resolve_search(smoke, None, True, split) == "breast_cancer-started"  # the latest one
    with pytest.raises(TunefleetError, match='it started with split_hash="[0-9a-f]+", this command has "other"'):
        resolve_search(smoke, "breast_cancer-started", True, "other")  # other rows under the same names
    saved = json.loads((first.path / SPEC_FILE).read_text())
    (first.path / SPEC_FILE).write_text(json.dumps({k: v for k, v in saved.items() if k != "split_hash"}))
    assert resolve_search(smoke, "breast_cancer-started", True, "other")  # an older file, without the key: no refusal
    (first.path / SPEC_FILE).write_text(json.dumps(saved))
    same = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    full = load_experiment("breast_cancer", values={**same, "search.scheduler.name": "none"}).fitted(first.data)
    with pytest.raises(
        TunefleetError, match=r"cannot resume breast_cancer-started: it started with space\.\S+=.*--smoke"
    ) as err:
        resolve_search(full, "breast_cancer-started", True, split)
    assert "\n" not in str(err.value)
    tune = smoke.model_copy(update={"search": smoke.search.model_copy(update={"backend": "ray", "cohort_size": 1})})
    with pytest.raises(TunefleetError, match='it started with search.backend="optuna", this command has "ray"'):
        resolve_search(tune, "breast_cancer-started", True, split)  # the reason, not "no ray search state"
    with pytest.raises(TunefleetError, match="cannot resume nosuch: no optuna search state"):
        resolve_search(smoke, "nosuch", True, split)


def test_searches_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch) -> None:
    """The default name has one-second resolution; a scripted second search must not resume the first."""
    monkeypatch.setattr("tunefleet.search.resume.time.strftime", lambda fmt: "20261122-120000")
    exp = _exp(tmp_path)
    names = [new_name(exp) for _ in range(3)]  # each call claims its directory: searches started together
    assert all((tmp_path / name).is_dir() for name in names)  # took the same name before either made it
    assert names == [
        "breast_cancer-20261122-120000",
        "breast_cancer-20261122-120000-2",
        "breast_cancer-20261122-120000-3",
    ]
    (tmp_path / names[0] / "search_spec.json").write_text("{}")  # only the first wrote anything
    os.utime(tmp_path / names[2], (time.time() + 60, time.time() + 60))  # the newest, but empty
    assert latest_name(exp) == names[0]  # --resume passes over names claimed by searches that failed at once
