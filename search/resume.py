"""Which search a command runs, checked before anything slow starts.

A new search gets a fresh name; ``--resume`` takes the named (or latest) one, which must
have left state to resume from and must be the same search: the same data (its split
hash), split, space, objective, training settings and schedule as when it started. Those
are saved beside its state (``search_spec.json``) when it starts. Resuming with other
flags (say, without the ``--smoke`` it started with) used to go on with the new space
under the old trials, with one Optuna warning per trial; it is now refused in one line,
before Ray or the tracking store start (3.4 s for the CLI here: the backend's import).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tunefleet.config import is_uri
from tunefleet.errors import TunefleetError
from tunefleet.fileio import written_whole
from tunefleet.search.backends import TrialLoop, get_backend, get_loop
from tunefleet.search.experiment import ExperimentConfig

SPEC_FILE = "search_spec.json"
# What makes two runs one search. Left out, so that a resume may change them: the trial
# budget, concurrency, resources, time budget, retries, storage and reporting intervals.
SAME_EXPERIMENT = {"name", "dataset", "split", "threshold", "seed_config", "metric", "mode", "space", "train"}
SAME_SEARCH = {"backend", "cohort_size", "seed", "scheduler"}


def new_name(exp: ExperimentConfig) -> str:
    """``<dataset>-<time>``, with ``-2``, ``-3``... when a search started in the same second:
    two scripted searches must never share (and silently merge) one state directory. The
    directory is made here, which only one process can do: searches started together each
    took the first free name before either made it, and then shared one study."""
    base = f"{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if is_uri(exp.search.storage_path):
        return base
    storage = Path(exp.search.storage_path).expanduser()
    name, n = base, 1
    while True:
        try:
            (storage / name).mkdir()
            return name
        except FileExistsError:
            n += 1
            name = f"{base}-{n}"


def latest_name(exp: ExperimentConfig) -> str:
    """The most recent experiment of this dataset under the storage path (for --resume)."""
    storage = Path(exp.search.storage_path).expanduser()
    if is_uri(exp.search.storage_path):
        raise TunefleetError("--resume with a URI storage path needs --name NAME of the experiment to resume")
    candidates = sorted(  # a name claimed by a search that failed before it wrote anything is empty
        (p for p in storage.glob(f"{exp.name}-*") if p.is_dir() and any(p.iterdir())),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    if not candidates:
        raise TunefleetError(
            f"nothing to resume: no experiment named {exp.name}-* under {storage}; drop --resume to start one"
        )
    return candidates[0].name


def resolve_search(
    exp: ExperimentConfig, name: str | None, resume: bool, split_hash: str, loop: TrialLoop | None = None
) -> str:
    """The search's name, once it is known to be startable (new) or resumable (the same search
    on the same data: ``split_hash`` is :attr:`PreparedData.split_hash` of the data loaded now;
    ``loop`` is the one that would run it, and knows its state: by default, the spec's)."""
    if name:
        _check_plain(name)
    _check_storage(exp.search.storage_path)
    name = name or (latest_name(exp) if resume else new_name(exp))
    path = Path(exp.search.storage_path).expanduser() / name
    if resume and not is_uri(exp.search.storage_path):
        # First: resumed with another --cohort-size, a search has no state for the new
        # driver, and "it started with search.cohort_size=..." says why.
        _check_same_search(path, _identity(exp, split_hash), name)
    loop = loop or get_loop(exp, get_backend(exp.search.backend))
    exists = loop.can_resume(exp, name)
    if resume and not exists:
        raise TunefleetError(f"cannot resume {name}: no {exp.search.backend} search state under {path}")
    if not resume and exists:
        raise TunefleetError(
            f"a search named {name} already exists under {path.parent}; pass --resume to continue it, or another --name"
        )
    return name


def _check_plain(name: str) -> None:
    """A search's name names one folder under the storage path: no '/', no '..' out of it."""
    if name in (".", "..") or "/" in name or "\\" in name:
        raise TunefleetError(
            f"search name {name!r} must be a plain name, without '/' (it names a folder under --storage-path); "
            "pass another --name"
        )


def _check_storage(storage: str) -> None:
    """A local storage path that can be made and written, refused before anything starts
    (it failed after Ray and the tracking store had started, and marked the search's run failed)."""
    if is_uri(storage):
        return
    root = Path(storage).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TunefleetError(f"cannot make {root} ({err.strerror}); pass a writable --storage-path") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise TunefleetError(f"cannot write under {root}; pass a writable --storage-path")


def save_spec(path: Path, exp: ExperimentConfig, split_hash: str) -> None:
    """Record what :func:`resolve_search` compares on ``--resume`` (local and shared paths only)."""
    if is_uri(exp.search.storage_path):
        return
    path.mkdir(parents=True, exist_ok=True)
    with written_whole(path / SPEC_FILE) as tmp:
        tmp.write_text(json.dumps(_identity(exp, split_hash), indent=1, sort_keys=True))


def _identity(exp: ExperimentConfig, split_hash: str) -> dict[str, Any]:
    return {
        **exp.model_dump(mode="json", include=SAME_EXPERIMENT),
        "search": exp.search.model_dump(mode="json", include=SAME_SEARCH),
        "split_hash": split_hash,  # the same file name with other rows is other data
    }


def _check_same_search(path: Path, now: dict[str, Any], name: str) -> None:
    saved_file = path / SPEC_FILE
    if not saved_file.is_file():  # started before this file was written: nothing to compare
        return
    difference = _first_difference(json.loads(saved_file.read_text()), now)
    if difference is not None:
        key, saved, current = difference
        raise TunefleetError(
            f"cannot resume {name}: it started with {key}={json.dumps(saved)}, this command has {json.dumps(current)}; "
            "resume with the data, flags and --set values it started with (--smoke too), or drop --resume to start anew"
        )


def _first_difference(then: Any, now: Any, key: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted key whose value differs between two JSON trees (None if they are equal).

    Only keys both trees have are compared: a file saved by an older tunefleet lacks what
    was added since, and that is no reason to refuse its search."""
    if isinstance(then, dict) and isinstance(now, dict):
        for k in sorted(then.keys() & now.keys()):
            found = _first_difference(then[k], now[k], f"{key}.{k}" if key else k)
            if found is not None:
                return found
        return None
    return None if then == now else (key, then, now)
