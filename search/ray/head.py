"""The local Ray a search starts ahead, in a child process, before the driver's imports.

Why the child: a local ``ray.init`` takes 4-5 s on an idle 2-core machine (Ray's GCS,
raylet and five Python daemons start and register), and 6-9 s beside the driver's
other work, because its Python half needs the driver's interpreter lock. A search's
driver spends its first seconds importing torch and MLflow on one core. Started by a
child at the moment the search is known to need it, Ray comes up on the idle core, and
the driver connects to it in about 0.1 s once its imports are done (see the README's
fixed-cost table for the measured gain).

The child holds the head until its stdin closes: when the search ends, or when the
driver dies in any way (a kill included), so the cluster never outlives the command.
It runs in a session of its own, so a Ctrl-C reaches the driver, which then closes it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from typing import Any


def _auth_env() -> dict[str, str]:
    """Set this process up to reach the child's Ray, before it imports Ray; the child's environment.

    Ray turns token auth on for a new local cluster (announcing it on the starting
    process's stderr) when ``RAY_AUTH_MODE`` is unset, but a driver connecting to an
    address enables it only if that variable says so, and reads it when Ray is
    imported. So this process sets it now, and the child starts without it, as an
    in-process start would. Without a configured token, Ray would write one to
    ``~/.ray/auth_token`` if that file is missing; another search starting beside on a
    fresh machine could write a different one between the child's start and this
    process's connect, so both get one token of their own here. A token the user
    configured (``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), or
    ``RAY_AUTH_MODE=disabled``, is kept as it is.
    """
    child = dict(os.environ)
    token = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    if os.environ.setdefault("RAY_AUTH_MODE", "token") == "token" and not token:
        os.environ["RAY_AUTH_TOKEN"] = child["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        _OWN_TOKEN.append(os.environ["RAY_AUTH_TOKEN"])
    return child


_OWN_TOKEN: list[str] = []  # the token _auth_env made, set before this process imported Ray


def token_is_ours() -> bool:
    """Whether this process's Ray runs with the token :func:`_auth_env` made before Ray's import:
    a later child is then started with the same one (a second search in one process: ``run-all``)."""
    return bool(_OWN_TOKEN) and os.environ.get("RAY_AUTH_TOKEN") == _OWN_TOKEN[0]


class LocalHead:
    """A local Ray head held by a child process (see the module docstring)."""

    def __init__(self, verbose: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tunefleet.search.ray.head", *(["--verbose"] if verbose else [])],
            env=_auth_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def address(self) -> str | None:
        """The head's GCS address once it is up (blocks until then); None if it could not start."""
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip() or None

    def stop(self) -> None:
        """Close the child's stdin: it shuts its Ray down (about 0.5 s) and exits; wait for that."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()

    def discard(self) -> None:
        """Kill a head no search used (the command failed first), without waiting for its start:
        Ray's processes die with the process that started them."""
        self.proc.kill()
        self.proc.wait()


def _node_without_api_server() -> Any:
    """Ray's ``Node`` less its API server (see :func:`_start_head`)."""
    from ray._private.node import Node

    class HeadNode(Node):
        def start_api_server(self, *, include_dashboard: bool | None, raise_on_failure: bool) -> None:
            """Not started: nothing of a private search cluster uses it."""

    return HeadNode


def _start_head(verbose: bool) -> Any:
    """A head node as ``ray.init`` starts one (its local-start steps, through the same Ray
    internals), less the autoscaler monitor, which a private one-node cluster never uses
    (~1 CPU-s), and less a driver connection of its own: the child only holds the node.
    Without ``--verbose``, also less the log monitor (~1 CPU-s), which only copies the
    workers' output to the driver's terminal: quiet output shows none of it, and a failed
    cohort's error comes back with its result.

    The raylet starts its Python workers (one per CPU) as it starts, not when the first
    driver connects: they then start while the driver still imports and loads the data,
    instead of after the search's first warm-up task (a worker's start took 1.6 s of the
    32-trial command's critical path), and not inside the driver's ``ray.init``, which
    held the driver's interpreter lock meanwhile (0.7 s on an idle machine, 0.8-1.1 s in a
    smoke search). Workers Ray starts before any job take the first job's tasks as its
    own workers would (the driver's ``sys.path`` and working directory included; checked
    against this head), so the search's warm-up tasks
    (:func:`tunefleet.search.cohort_jobs.warm_workers`) and its cohorts run on them, and Ray starts
    no other worker beside them.

    Nor does it start the API server (Ray's ``dashboard.py``), which ``include_dashboard=False``
    still starts for the job-submission and state APIs (``ray job``, ``ray list``) and
    usage stats, and whose start the head waits for before it starts the raylet: ~1 CPU-s,
    and the head came up 1.0-2.0 s later with it (3.0-3.2 s against 1.9-2.0 s idle, 5.5 s
    against 3.4 s in a smoke search). A search's own cluster serves no jobs but the
    search, and sends no usage stats; ``ray.timeline()`` reads the GCS and works without
    it (checked against this head).
    Ray is pinned (``constraints.txt``); should these internals change, the child fails,
    and the driver starts Ray in-process as before."""
    from ray._common.usage import usage_lib
    from ray._private.authentication.authentication_token_setup import (
        enable_token_auth_by_default,
        ensure_token_if_auth_enabled,
    )
    from ray._private.parameter import RayParams

    enable_token_auth_by_default()
    ensure_token_if_auth_enabled(None, create_token_if_missing=True)
    usage_lib.set_usage_stats_enabled_via_env_var(False)
    workers_at_start: dict[str, Any] = {"enable_worker_prestart": True, "prestart_worker_first_driver": False}
    # (Ray annotates include_log_monitor and the config's values as strings; it reads a flag, and JSON.)
    params = RayParams(
        include_dashboard=False,
        no_monitor=True,
        include_log_monitor=verbose,  # type: ignore[arg-type]
        _system_config=workers_at_start,
    )
    return _node_without_api_server()(
        params, head=True, shutdown_at_exit=False, spawn_reaper=True, ray_init_cluster=True
    )


def _serve() -> int:
    """The child: start a local Ray head, print its address, hold it until stdin closes.

    A start that fails (or misses Ray's 30 s registration wait on a loaded machine) is
    left to the driver's in-process start, which reports it or tries once more."""
    # Ray's processes inherit how this one takes SIGINT. From a parent that ignores it (a
    # command run with `&`, nohup, a CI runner) a worker ignored it too, and Ray's task
    # cancellation, which interrupts the worker, failed inside Ray ("'Handlers' object is not
    # callable") and printed an "Unhandled error". This child is in a session of its own:
    # no terminal's Ctrl-C reaches it either way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        node = _start_head(verbose="--verbose" in sys.argv[1:])
    except Exception as err:  # noqa: BLE001 - the driver then starts Ray itself
        print(f"local Ray head: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    try:
        print(node.gcs_address, flush=True)
        sys.stdin.read()
    except BrokenPipeError:
        pass  # the driver is gone
    finally:
        node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
