"""Fixed-cost benchmark: what a whole `tunefleet search` command costs against its baselines.

Each repeat runs, in this order, on this machine:
  import  the bare import line, ``python -c "import torch, ray, mlflow, optuna, sklearn,
          matplotlib, ray.tune"`` (a new interpreter);
  smoke   ``tunefleet search sign --smoke``;
  floor   (d) of ``bench_search.py``: the 32 fixed breast_cancer configurations of that
          benchmark, ``train_one`` each, in a forked 2-process pool of this process (torch
          and the data loaded already, so it is training only);
  parts   ``required_parts.py``: what any Ray search command must do before it trains (a
          local head, the driver's Ray/MLflow/Optuna imports, two workers importing torch),
          overlapped as tunefleet overlaps it, with no data, training or writes;
  cli32   ``tunefleet search breast_cancer --trials 32 --cohort-size 32 --scheduler none``.
Each command runs in a new empty directory (a new SQLite tracking store, the embedded
default), its output captured. Ratios are taken within a repeat, against the baseline timed
just before: smoke / import (target <= 2.0) and cli32 / floor (target <= 1.5); parts / floor
says how much of the cli32 target those required parts alone take.

Besides each wall time it prints the CPU seconds the whole machine was busy meanwhile
(``/proc/stat``, so Ray's daemons and workers count) and that CPU divided by the cores: the
wall time the command would take if it kept every core busy from start to end. When that
bound is close to the wall time, the command is limited by the CPU work it does, not by
waiting, and only removing work makes it faster.

    python benchmarks/bench_fixed_cost.py [--repeat 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_search import fixed_points, run_floor

from tunefleet.errors import last_line

BARE_IMPORT = "import torch, ray, mlflow, optuna, sklearn, matplotlib, ray.tune"
TARGETS = {"smoke_over_import": 2.0, "cli32_over_floor": 1.5}
CORES = os.cpu_count() or 1


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (user, nice, system, irq, softirq)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def timed(step: Callable[[], None]) -> tuple[float, float | None]:
    """Wall seconds of ``step`` and the machine's busy CPU seconds meanwhile (None off Linux)."""
    cpu0, started = busy_cpu_seconds(), time.perf_counter()
    step()
    wall, cpu1 = time.perf_counter() - started, busy_cpu_seconds()
    return wall, (cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None)


def command(argv: list[str]) -> Callable[[], None]:
    """Run ``argv`` in a new empty directory; a failure stops the benchmark with its last line."""

    def run() -> None:
        with tempfile.TemporaryDirectory(prefix="tunefleet-fixed-") as cwd:
            done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            why = last_line(done.stderr or done.stdout) or "(no output)"
            sys.exit(f"{' '.join(argv[-6:])} failed (exit {done.returncode}): {why}")

    return run


def tunefleet_cli() -> list[str]:
    """The installed ``tunefleet`` script beside this interpreter, else its module."""
    script = Path(sys.executable).with_name("tunefleet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tunefleet.pipeline.cli"]


def one_repeat(floor: Callable[[], None]) -> dict[str, tuple[float, float | None]]:
    cli = tunefleet_cli()
    steps = {
        "import": command([sys.executable, "-c", BARE_IMPORT]),
        "smoke": command([*cli, "search", "sign", "--smoke"]),
        "floor": floor,
        "parts": command([sys.executable, str(Path(__file__).with_name("required_parts.py"))]),
        "cli32": command(
            [*cli, "search", "breast_cancer", "--trials", "32", "--cohort-size", "32", "--scheduler", "none"]
        ),
    }
    out = {}
    for name, step in steps.items():
        out[name] = timed(step)
        wall, cpu = out[name]
        bound = f"cpu {cpu:5.1f} s, /{CORES} = {cpu / CORES:5.2f} s" if cpu is not None else "cpu n/a"
        print(f"  {name:<7} {wall:6.2f} s   ({bound})", flush=True)
    return out


def ratios(run: dict[str, tuple[float, float | None]]) -> dict[str, float]:
    """The targets' ratios, and cli32's CPU-bound wall time (its CPU / the cores) over the floor."""
    out = {
        "smoke_over_import": run["smoke"][0] / run["import"][0],
        "cli32_over_floor": run["cli32"][0] / run["floor"][0],
        "parts_over_floor": run["parts"][0] / run["floor"][0],
    }
    cpu = run["cli32"][1]
    if cpu is not None:
        out["cli32_cpu_bound_over_floor"] = cpu / CORES / run["floor"][0]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    import torch

    from tunefleet.catalog import dataset_conf

    torch.set_num_threads(1)
    data = dataset_conf("breast_cancer").load()
    points = fixed_points(32)
    storage = tempfile.mkdtemp(prefix="tunefleet-bench-")

    def floor() -> None:
        run_floor(points, storage, data)

    runs: list[dict[str, Any]] = []
    for i in range(args.repeat):
        print(f"repeat {i + 1} of {args.repeat} ({CORES} CPUs):", flush=True)
        measured = one_repeat(floor)
        runs.append(
            {
                "seconds": {k: wall for k, (wall, _) in measured.items()},
                "cpu_seconds": {k: cpu for k, (_, cpu) in measured.items()},
                "ratios": ratios(measured),
            }
        )
        print("  " + ", ".join(f"{k} = {v:.2f}" for k, v in runs[-1]["ratios"].items()), flush=True)
    print("medians over the repeats (targets: smoke/import <= 2.0, cli32/floor <= 1.5):")
    medians = {k: statistics.median(r["ratios"][k] for r in runs) for k in runs[0]["ratios"]}
    for key, value in medians.items():
        met = f"  ({'met' if value <= TARGETS[key] else 'not met'})" if key in TARGETS else ""
        print(f"  {key} = {value:.2f}{met}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": CORES, "runs": runs, "median_ratios": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
