"""The least a Ray search command has to do before it trains, overlapped as tunefleet overlaps it.

A local Ray head started in a child at once (``tunefleet.search.ray.head``, as a search starts it),
the driver's imports of Ray, MLflow and Optuna meanwhile, then two trial workers that
import torch. No data, no training, no tracking store, no writes. ``bench_fixed_cost.py``
times it beside the floor: whatever the 32-trial command costs above this is training,
MLflow's writes and the steps after the search.

    python benchmarks/required_parts.py
"""

from __future__ import annotations

import os
import time


def main() -> None:
    started = time.perf_counter()
    from tunefleet.search.ray.head import LocalHead

    head = LocalHead(verbose=False)
    import mlflow  # noqa: F401
    import optuna  # noqa: F401
    import ray

    imported = time.perf_counter()
    ray.init(address=head.address(), logging_level="ERROR", log_to_driver=False)
    connected = time.perf_counter()

    @ray.remote(num_cpus=1)
    def warm() -> int:
        import torch  # noqa: F401

        return os.getpid()

    ray.get([warm.remote() for _ in range(2)])
    warmed = time.perf_counter()
    ray.shutdown()
    head.stop()
    marks = {"imported": imported, "connected": connected, "workers have torch": warmed}
    print(", ".join(f"{k} {t - started:.2f} s" for k, t in marks.items()))


if __name__ == "__main__":
    main()
