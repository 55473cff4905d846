"""Reaching Ray: the address a search names, what a cluster can hold, and ``ray.init`` itself.

Stateless helpers; :class:`tunefleet.search.ray.backend.RayBackend` holds what a search
starts (a local head, Ray's shutdown) and uses these.
"""

from __future__ import annotations

import gc
import os
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tunefleet.errors import TunefleetError
from tunefleet.net import tcp_problem

if TYPE_CHECKING:
    from tunefleet.search.experiment import ExperimentConfig

AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def quiet_env() -> None:
    # Keep trial output readable: no log dedup summaries, the classic (quiet at verbose=0) output.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's CSV and TensorBoard loggers cost driver CPU per report; the JSON logger
    # (which the result grid and --resume read) is added explicitly by the driver.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


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


SLOW_START = "timed out during startup"  # Ray's fixed 30 s wait for a new node's raylet


def init_ray(ray: Any, kwargs: dict[str, Any], retry_slow_start: bool) -> None:
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


def then(*steps: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


def release_ray_objects(err: BaseException) -> None:
    """Free the Ray objects a failed search's frames still hold (task refs, Tune's trials),
    before Ray shuts down. Freed as the error is handled, in the main thread while Ray shut
    down in another, one of them made Ray end the process ("The core worker has already been
    shutdown", exit 1 instead of the command's 130 or 2; seen in CI's Ctrl-C test). The
    traceback keeps its lines; only the frames' variables go. Objects no frame holds (a
    caller's, Tune's own) go whenever their holder does: so on an error Ray also shuts down
    in the main thread, before the error leaves the session, and they go after it has."""
    traceback.clear_frames(err.__traceback__)
    gc.collect()


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
