"""``search.backend: ray`` (the default): trials on a Ray of the search's own, or on a cluster.

The backend owns Ray's life in a search, in three steps that the caller runs in order:

- :meth:`RayBackend.prepare` starts the local head ahead, in a child process
  (:mod:`tunefleet.search.ray.head`), so that it comes up while the driver imports and
  loads the data;
- :meth:`RayBackend.lease` connects (to that head, a cluster, or a fresh in-process Ray),
  checks what the search asks for against what the cluster holds, and lends it as a
  :class:`RayLease`; on the way out it shuts a Ray it started down in a thread of its own
  (1.5-2.5 s that the steps after the search need not wait for), or at once on an error;
- :meth:`RayBackend.close` kills a head no search took and waits for that shutdown.

The instance holds the head and the thread: one backend per search (``run-all`` makes one
per dataset, closing each before the next starts).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunefleet.errors import TunefleetError, first_line
from tunefleet.search.ray.connect import (
    AUTH_LOGGER,
    check_address,
    check_reachable,
    check_resources,
    cluster_address,
    init_ray,
    is_local,
    quiet_env,
    release_ray_objects,
    then,
)
from tunefleet.search.ray.head import LocalHead, token_is_ours

if TYPE_CHECKING:
    from tunefleet.search.cohort_jobs import CohortRunner
    from tunefleet.search.experiment import ExperimentConfig
    from tunefleet.splits import PreparedData


@dataclass(frozen=True)
class RayLease:
    """What a Ray session lends a search: its trial slots, its GPUs, and Ray tasks to train cohorts on."""

    exp: ExperimentConfig
    slots: int
    resources: dict[str, float]
    own: bool  # a Ray this search started on this machine (not a cluster's): size it to the work

    @property
    def gpu(self) -> bool:
        return self.resources.get("GPU", 0) > 0

    def warm(self, slots: int) -> None:
        """Have ``slots`` workers import torch now, beside the driver's own start (:func:`warm_workers`)."""
        from tunefleet.search.ray.cohort_tasks import warm_workers

        need = self.exp.search.resources
        warm_workers(slots, max(need.cpus_per_trial, self.resources.get("CPU", 0) / slots), need.gpus_per_trial)

    def cohort_runner(self, data: PreparedData, slots: int) -> CohortRunner:
        from tunefleet.search.ray.cohort_tasks import RayRunner

        need = self.exp.search.resources
        return RayRunner(data, slots, need.cpus_per_trial, need.gpus_per_trial)


class RayBackend:
    """Trials on Ray: as Tune trials (:mod:`tunefleet.search.ray.tune_loop`) or as cohorts (Ray tasks)."""

    trial_loop = "tunefleet.search.ray.tune_loop:TuneLoop"

    def __init__(self) -> None:
        self._head: LocalHead | None = None  # started ahead by prepare(), until a session takes it
        self._shutdown: threading.Thread | None = None  # a Ray this backend started, shutting down

    def check(self, exp: ExperimentConfig, *, address: str | None) -> None:
        check_address(address)

    def prepare(self, exp: ExperimentConfig, *, address: str | None, verbose: bool) -> None:
        """Start the local Ray that this search's session will use now, in a child process.

        Only without a cluster address, and only while no Ray runs in this process: a Ray
        already running here is used as it is. And only before this process imports Ray, or
        after an earlier search here (``run-all``) whose child's token Ray read at its
        import: a token Ray read otherwise could not be shared with the child.
        """
        if is_local(address) and _no_ray_or_an_ended_one_of_ours():
            quiet_env()  # before the child starts: its raylet passes the environment on to the workers
            self._head = LocalHead(verbose)

    @contextmanager
    def lease(
        self, exp: ExperimentConfig, data: PreparedData, *, address: str | None, verbose: bool
    ) -> Iterator[RayLease]:
        with self.session(address, verbose=verbose) as resources:
            yield RayLease(exp, check_resources(exp, resources), resources, own=is_local(address))

    @contextmanager
    def session(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        verbose: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Yield the cluster's resources; shut Ray down afterwards only if this session started it.

        With neither ``address`` nor ``RAY_ADDRESS`` a local Ray starts: the head
        :meth:`prepare` started ahead if there is one, else in-process. A connection failure
        (wrong address, missing or wrong auth token) becomes a one-line TunefleetError
        instead of a Ray traceback.
        """
        import ray

        quiet_env()
        self.wait()
        started = False
        shutdown: Callable[[], None] = ray.shutdown
        if not ray.is_initialized():
            target = cluster_address(address)
            kwargs: dict[str, Any] = {"log_to_driver": True, "include_dashboard": False, "configure_logging": False}
            if target:
                check_reachable(target)
                kwargs["address"] = target
            elif self._head is not None and (head_address := self._head.address()):
                head, self._head = self._head, None  # one that could not start stays for close() to stop
                kwargs["address"] = head_address
                shutdown = then(ray.shutdown, head.stop)
            else:
                # "local" always starts a fresh in-process Ray; a bare ray.init() would join
                # any cluster `ray start` left registered on this machine.
                kwargs.update(address="local", num_cpus=num_cpus, num_gpus=num_gpus)
            if not verbose:
                # Ray 2.60 turns token auth on for a new local cluster and announces it on
                # this logger every time; the search behaves the same either way.
                logging.getLogger(AUTH_LOGGER).setLevel(logging.ERROR)
            try:
                init_ray(ray, kwargs, retry_slow_start=not target)
            except Exception as err:  # noqa: BLE001 - every connection failure becomes one line
                first = first_line(err)
                raise TunefleetError(
                    f"cannot connect to Ray at {target} ({type(err).__name__}: {first}); check --address / "
                    "RAY_ADDRESS and that RAY_AUTH_MODE=token and RAY_AUTH_TOKEN match the cluster's"
                    if target
                    else f"could not start a local Ray ({type(err).__name__}: {first})"
                ) from None
            started = True
        try:
            yield dict(ray.cluster_resources())
        except BaseException as err:
            if started:  # shut down here, before the error reaches code that may drop Ray objects
                release_ray_objects(err)
                started = False
                shutdown()
            raise
        finally:
            if started:
                self._shutdown = threading.Thread(target=shutdown, name="ray-shutdown")
                self._shutdown.start()

    def wait(self) -> None:
        """Wait until a Ray this backend started has shut down (before another starts, and before exit)."""
        if self._shutdown is not None:
            self._shutdown.join()
            self._shutdown = None

    def close(self) -> None:
        """Kill a head no session took (the command failed first), and wait for Ray's shutdown."""
        if self._head is not None:
            self._head.discard()
            self._head = None
        self.wait()


def _no_ray_or_an_ended_one_of_ours() -> bool:
    """No Ray in this process yet, or one of an earlier search's here that has ended (``run-all``)."""
    ray = sys.modules.get("ray")
    if ray is None:
        return True
    return token_is_ours() and not ray.is_initialized()
