"""Connecting to the MLflow store, and the batched-write helpers the tracker uses.

Writes go in batches: one ``log_batch`` per trial instead of a call per param/metric
(82 ms per trial on SQLite when done one by one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tunefleet.errors import TunefleetError, first_line
from tunefleet.net import tcp_problem
from tunefleet.pipeline.settings import TrackingSettings
from tunefleet.pipeline.sqlite_seed import seed_new_store, sqlite_file

MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
T = TypeVar("T")


def is_server(uri: str) -> bool:
    """A tracking server over HTTP (not a database file, not Databricks' hosted service)."""
    return uri.startswith(("http://", "https://"))


def _check_server(uri: str) -> None:
    """Fail fast when nothing listens at an HTTP tracking server's address."""
    from urllib.parse import urlparse

    url = urlparse(uri)
    problem = tcp_problem(url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
    if problem:
        raise _unreachable(uri, problem)


def _unreachable(uri: str, why: str) -> TunefleetError:
    return TunefleetError(
        f"cannot reach the MLflow tracking store at {uri} ({why}); start the server "
        "(`mlflow server ...`) or fix --tracking-uri / MLFLOW_TRACKING_URI"
    )


# How long a search waits for a tracking server that stopped answering: MLflow's own
# defaults (7 retries, backoff factor 2, 120 s a request) retry each write for ~4 minutes,
# made for a hosted service's rate limits, and a search whose server had gone hung, silent,
# for as many minutes a write. These give up after ~30 s, which rides out a restart;
# set the variables to wait longer.
SERVER_PATIENCE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",  # retries after 0, 2, 4, 8 and 16 s
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bounded_patience(uri: str) -> None:
    """SERVER_PATIENCE for a tracking server, where the user set no value of their own."""
    if is_server(uri):
        for name, value in SERVER_PATIENCE.items():
            os.environ.setdefault(name, value)


def lost_store(err: BaseException, uri: str) -> TunefleetError | None:
    """The one line for a write that failed because the tracking server went away (None for any other error)."""
    import requests

    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if not any(isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout) for e in chain):
        return None
    why = next((e.strerror for e in reversed(chain) if isinstance(e, OSError) and e.strerror), None)
    return TunefleetError(
        f"lost the MLflow tracking store at {uri} ({why or 'no answer'}); what was logged is kept: "
        "start the server again, then run the same command with --resume"
    )


def check_server(settings: TrackingSettings) -> None:
    """Milliseconds: is anything listening at a tracking server's address? (Nothing to check for a database file.)"""
    if is_server(settings.tracking_uri):
        _check_server(settings.tracking_uri)


def exists_already(err: BaseException) -> bool:
    """Whether a write failed on a row that is there already: a registered model's name, or a
    row another search wrote first (two searches of one dataset started together into one store:
    MLflow finds no experiment or dataset row, then inserts it, and the second insert fails)."""
    return getattr(err, "error_code", None) in {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"} or any(
        words in str(err) for words in ("UNIQUE constraint failed", "duplicate key value")
    )


def raced_once(write: Callable[[], T]) -> T:
    """``write()``, once more if another search wrote the same row first: MLflow then finds it."""
    try:
        return write()
    except Exception as err:  # only the race is retried; anything else is raised
        if not exists_already(err):
            raise
    return write()


def check_store_exists(settings: TrackingSettings) -> None:
    """A command that reads what searches wrote needs their store: MLflow would make a new,
    empty SQLite file where the path is mistyped or the directory is another (seconds of
    migrations), and then say the model is not found."""
    path = sqlite_file(settings.tracking_uri)
    if path is not None and not path.exists():
        raise TunefleetError(
            f"no tracking store at {settings.tracking_uri}: {path} does not exist; run this where the search ran, "
            "or pass --tracking-uri / MLFLOW_TRACKING_URI"
        )


def connect(settings: TrackingSettings) -> Any:
    """An MlflowClient for the store (fluent calls such as ``log_model`` use it too), checked to answer."""
    import mlflow
    from mlflow.tracking import MlflowClient

    check_server(settings)
    bounded_patience(settings.tracking_uri)
    seed_new_store(settings.tracking_uri)  # a new SQLite file: a copy of a migrated one, not 3.5 s of migrations
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure to reach the store is one line
        raise _unreachable(settings.tracking_uri, first_line(err, 160)) from None
    return client


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{'a.b': 'value'}`` strings for MLflow params (500-char limit)."""
    out: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)[:500]
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def log_batch(
    client: Any,
    run_id: str,
    metrics: Iterable[tuple[str, float, int]] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Batched writes within MLflow's per-call limits (1000 metrics, 100 params, 100 tags)."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    metric_list = [Metric(k, float(v), now, step) for k, v, step in metrics if v == v]  # drop NaN
    param_list = [Param(k, v) for k, v in (params or {}).items()]
    tag_list = [RunTag(k, v) for k, v in (tags or {}).items()]
    while metric_list or param_list or tag_list:
        client.log_batch(
            run_id, metrics=metric_list[:MAX_METRICS], params=param_list[:MAX_PARAMS], tags=tag_list[:MAX_TAGS]
        )
        metric_list, param_list, tag_list = metric_list[MAX_METRICS:], param_list[MAX_PARAMS:], tag_list[MAX_TAGS:]


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold a first Ctrl-C until the block's MLflow writes end, then raise it as it came.

    Ctrl-C between a child run's creation and its end left a run without results that
    ``--resume`` counted as logged, and one inside a SQLite write left the transaction
    open, so ending the parent run KILLED failed with "database is locked" (seen in the
    Ctrl-C test). A second Ctrl-C is not held (a tracking server that hangs). Only in the
    main thread, where Python runs signal handlers, and not where SIGINT is ignored (a
    background job).
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    handler: Callable[[int, Any], Any] = previous
    caught: list[Any] = []

    def hold(signum: int, frame: Any) -> None:
        if caught:
            handler(signum, frame)
        caught.append(frame)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            handler(signal.SIGINT, caught[0])
