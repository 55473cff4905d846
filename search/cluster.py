"""Connecting to Ray: an existing cluster (--address / RAY_ADDRESS) or a local one."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tunefleet.errors import TunefleetError, first_line

AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


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


def check_address(address: str | None) -> None:
    """``--address`` or ``RAY_ADDRESS``, when either is set, must answer (see :func:`check_reachable`)."""
    target = address or os.environ.get("RAY_ADDRESS")
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
def ray_session(
    address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None, verbose: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield the cluster's resources; shut Ray down afterwards only if we started it.

    With neither ``address`` nor ``RAY_ADDRESS`` a local Ray starts in-process (the
    embedded default). A connection failure (wrong address, missing or wrong auth
    token) becomes a one-line TunefleetError instead of a Ray traceback.
    """
    import ray

    _quiet_env()
    started = False
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {
            "log_to_driver": True,
            "include_dashboard": False,
            "configure_logging": False,
        }
        if target:
            check_reachable(target)
            kwargs["address"] = target
        else:
            # "local" always starts a fresh in-process Ray; a bare ray.init() would join
            # any cluster `ray start` left registered on this machine.
            kwargs.update(address="local", num_cpus=num_cpus, num_gpus=num_gpus)
        if not verbose:
            # Ray 2.60 turns token auth on for a new local cluster and announces it on
            # this logger every time; the search behaves the same either way.
            logging.getLogger(AUTH_LOGGER).setLevel(logging.ERROR)
        try:
            ray.init(**kwargs)
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
    finally:
        if started:
            ray.shutdown()
