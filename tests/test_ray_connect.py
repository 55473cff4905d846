"""Reaching Ray: ray.init tried once more when a local node misses Ray's start wait."""

from __future__ import annotations

import pytest


def test_a_local_ray_that_misses_its_start_wait_is_started_once_more() -> None:
    """Ray gives a new node a fixed 30 s to register; a loaded machine can miss it once.
    (Ray's own start cannot be made slow on demand, so a stand-in raises its exact error.)"""
    from tunefleet.search.ray.connect import SLOW_START, init_ray

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
    init_ray(local, {}, retry_slow_start=True)
    assert local.calls == ["init", "shutdown", "init"]
    remote = SlowOnce()
    with pytest.raises(Exception, match=SLOW_START):  # an address given: no second start, the error stands
        init_ray(remote, {}, retry_slow_start=False)
    assert remote.calls == ["init"]
