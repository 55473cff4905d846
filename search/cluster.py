"""Connecting to Ray: an existing cluster (--address / RAY_ADDRESS) or a local one."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from search.local_ray import LocalHead, token_is_ours
from tunefleet.errors import TunefleetError, first_line

if TYPE_CHECKING:
    from search.spec import ExperimentConfig

AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
_SHUTDOWN: list[threading.Thread] = []  # a local Ray still shutting down beside the caller
_EARLY: list[LocalHead] = []  # a local Ray started ahead for the next session (early_local_ray)


def _quiet_env() -> None:
    # Keep trial output readable: no log dedup summaries, the classic (quiet at verbose=0) output.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's CSV and TensorBoard loggers cost driver CPU per report; the JSON logger
    # (which the result grid and --resume read) is added explicitly by the driver.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def tcp_problem(host: str, port: int, timeout_s: float = 5.0) -> str | None:
    """Why nothing answers a TCP connect to host:port (None if something does).

    A server's own client (Ray's, MLflow's) retries for minutes before it gives up; a
    plain connect tells in milliseconds.
    """
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as err:
        return err.strerror or type(err).__name__


def cluster_address(address: str | None) -> str | None:
    """The cluster the user named: ``--address``, else ``RAY_ADDRESS``; None for none."""
    return address or os.environ.get("RAY_ADDRESS") or None


def is_local(address: str | None) -> bool:
    """No cluster named: the search starts a Ray of its own here."""
    return cluster_address(address) is None


def check_address(address: str | None) -> None:
    """``--address`` or ``RAY_ADDRESS``, when either is set, must answer (see :func:`check_reachable`)."""
    target = cluster_address(address)
    if target:
        check_reachable(target)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at a Ray address.

    ``ray.init`` on an address where nothing answers retries for minutes before it
    gives up; a plain TCP connect tells in milliseconds. ``auto`` (the local
    cluster started with ``ray start``) is left to Ray.
    """
    if address in {"auto", "local"}:
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise TunefleetError(
            f"Ray address {address!r} is not host:port (or ray://host:port); fix --address / RAY_ADDRESS"
        )
    problem = tcp_problem(host, int(port), timeout_s)
    if problem:
        raise TunefleetError(
            f"cannot connect to Ray at {address} ({problem}); check --address / RAY_ADDRESS "
            "and that the head node is running (`ray start --head`)"
        )


@contextmanager
def early_local_ray(exp: ExperimentConfig, address: str | None, verbose: bool) -> Iterator[None]:
    """Start the local Ray that this search's session will use now, in a child process
    (:mod:`search.local_ray`), so that it starts while the driver imports; stop it on
    exit if no session took it (the search failed before it started).

    Only for the ``ray`` backend without a cluster address, and only while no Ray runs in
    this process: a Ray already running here is used as it is. And only before this
    process imports Ray, or after an earlier search here (``run-all``) whose child's token
    Ray read at its import: a token Ray read otherwise could not be shared with the child.
    """
    start = exp.search.backend == "ray" and is_local(address) and _no_ray_or_an_ended_one_of_ours()
    if start:
        _quiet_env()  # before the child starts: its raylet passes the environment on to the workers
        _EARLY.append(LocalHead(verbose))
    try:
        yield
    finally:
        while _EARLY:
            _EARLY.pop().discard()


def _no_ray_or_an_ended_one_of_ours() -> bool:
    ray = sys.modules.get("ray")
    if ray is None:
        return True
    if not token_is_ours():
        return False
    wait_for_shutdown()  # the earlier search's Ray, shutting down beside its last steps
    return not ray.is_initialized()


@contextmanager
def ray_session(
    address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None, verbose: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield the cluster's resources; shut Ray down afterwards only if we started it.

    With neither ``address`` nor ``RAY_ADDRESS`` a local Ray starts: the one
    :func:`early_local_ray` started ahead if there is one, else in-process (the
    embedded default). A connection failure (wrong address, missing or wrong auth
    token) becomes a one-line TunefleetError instead of a Ray traceback.
    """
    import ray

    _quiet_env()
    wait_for_shutdown()
    started = False
    shutdown: Callable[[], None] = ray.shutdown
    if not ray.is_initialized():
        target = cluster_address(address)
        kwargs: dict[str, Any] = {
            "log_to_driver": True,
            "include_dashboard": False,
            "configure_logging": False,
        }
        if target:
            check_reachable(target)
            kwargs["address"] = target
        elif _EARLY and (head_address := _EARLY[-1].address()):
            head = _EARLY.pop()  # one that could not start stays for early_local_ray to stop
            kwargs["address"] = head_address
            shutdown = _then(ray.shutdown, head.stop)
        else:
            # "local" always starts a fresh in-process Ray; a bare ray.init() would join
            # any cluster `ray start` left registered on this machine.
            kwargs.update(address="local", num_cpus=num_cpus, num_gpus=num_gpus)
        if not verbose:
            # Ray 2.60 turns token auth on for a new local cluster and announces it on
            # this logger every time; the search behaves the same either way.
            logging.getLogger(AUTH_LOGGER).setLevel(logging.ERROR)
        try:
            _init(ray, kwargs, retry_slow_start=not target)
        except Exception as err:  # noqa: BLE001 - every connection failure becomes one line
            first = first_line(err)
            raise TunefleetError(
                f"cannot connect to Ray at {target} ({type(err).__name__}: {first}); check --address / RAY_ADDRESS "
                "and that RAY_AUTH_MODE=token and RAY_AUTH_TOKEN match the cluster's"
                if target
                else f"could not start a local Ray ({type(err).__name__}: {first})"
            ) from None
        started = True
    try:
        yield dict(ray.cluster_resources())
    except BaseException as err:
        if started:  # shut down here, before the error reaches code that may drop Ray objects
            _release_ray_objects(err)
            started = False
            shutdown()
        raise
    finally:
        if started:
            _shutdown_beside(shutdown)


SLOW_START = "timed out during startup"  # Ray's fixed 30 s wait for a new node's raylet


def _init(ray: Any, kwargs: dict[str, Any], retry_slow_start: bool) -> None:
    """``ray.init``, once more when a local node missed Ray's fixed 30 s registration wait.

    On a loaded 2-core machine the raylet can take longer than that to register (seen in
    CI, with other searches running beside); a second start then succeeds.
    """
    try:
        ray.init(**kwargs)
    except Exception as err:
        if not (retry_slow_start and SLOW_START in str(err)):
            raise
        ray.shutdown()
        ray.init(**kwargs)


def _then(*steps: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


def _release_ray_objects(err: BaseException) -> None:
    """Free the Ray objects a failed search's frames still hold (task refs, Tune's trials),
    before Ray shuts down. Freed as the error is handled, in the main thread while Ray shut
    down in another, one of them made Ray end the process ("The core worker has already been
    shutdown", exit 1 instead of the command's 130 or 2; seen in CI's Ctrl-C test). The
    traceback keeps its lines; only the frames' variables go. Objects no frame holds (a
    caller's, Tune's own) go whenever their holder does: so on an error Ray also shuts down
    in the main thread, before the error leaves the session, and they go after it has."""
    traceback.clear_frames(err.__traceback__)
    gc.collect()


def _shutdown_beside(shutdown: Callable[[], None]) -> None:
    """Shut the local Ray down in a thread: it takes 1.5-2.5 s, which the caller's next
    steps (testing, logging, registering the model) need not wait for."""
    thread = threading.Thread(target=shutdown, name="ray-shutdown")
    thread.start()
    _SHUTDOWN.append(thread)


def wait_for_shutdown() -> None:
    """Wait until a local Ray that a session started has shut down (before another starts, and before exit)."""
    while _SHUTDOWN:
        _SHUTDOWN.pop().join()


def check_resources(exp: ExperimentConfig, resources: dict[str, float]) -> int:
    """How many trials fit at once on the cluster; a one-line error for what cannot fit."""
    need = exp.search.resources
    if exp.train.device == "cuda" and need.gpus_per_trial <= 0:  # Ray hides the GPUs from such a trial
        raise TunefleetError(
            "train.device is cuda, but trials hold no GPU (Ray hides the GPUs from a trial that asks for none); "
            "pass --gpus-per-trial (1, or 0.25 to share one), or leave train.device at auto"
        )
    if need.gpus_per_trial > 0 and resources.get("GPU", 0) <= 0:
        raise TunefleetError(
            f"--gpus-per-trial {need.gpus_per_trial:g} asked for, but the Ray cluster has no GPUs; "
            "drop the flag or connect to a cluster with GPUs (--address)"
        )
    if need.cpus_per_trial > resources.get("CPU", 0):
        raise TunefleetError(
            f"--cpus-per-trial {need.cpus_per_trial:g} is more than the cluster's {resources.get('CPU', 0):g} CPUs; lower it"
        )
    slots = int(resources.get("CPU", 1) // need.cpus_per_trial)
    if need.gpus_per_trial > 0:
        slots = min(slots, int(resources.get("GPU", 0) / need.gpus_per_trial))
    return max(1, min(exp.search.max_concurrent_trials or slots, slots))
