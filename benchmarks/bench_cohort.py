"""Cohort training against one-by-one ``train_one``: the same fixed configs, one process, one run.

``python benchmarks/bench_cohort.py [--trials 32] [--device cpu|cuda] [--json PATH]``

Both variants train the same breast_cancer configs to completion on the same device; the
cohort variant groups them by :func:`tunefleet.cohort_plan.cohort_key` (layer count; Adam and
SGD members and all batch sizes share a cohort) and trains each group with ``train_cohort``. It prints the trials per second
of each and their ratio, and checks that every config's validation ROC AUC agrees between
the two within 1e-4. On a GPU machine, ``--device cuda`` measures the GPU path.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def configs(n: int, device: str) -> list:
    """``n`` seeded configs in a few cohort groups: widths, lr, weight decay, epochs vary within a group."""
    from tunefleet.train_config import TrainConfig

    rng = np.random.default_rng(0)
    shapes = [((), "adam", 32), ((32,), "adam", 32), ((64, 32), "adam", 32), ((16,), "sgd", 32)]
    out = []
    for i in range(n):
        widths, optimizer, batch = shapes[i % len(shapes)]
        widths = tuple(int(w * rng.choice([0.5, 1.0])) for w in widths)
        out.append(
            TrainConfig(
                hidden_widths=widths,
                optimizer=optimizer,
                batch_size=batch,
                lr=float(10 ** rng.uniform(-3.5, -1.5)),
                weight_decay=float(10 ** rng.uniform(-6, -3)),
                momentum=0.9 if optimizer == "sgd" else 0.0,
                epochs=int(rng.integers(10, 31)),
                seed=i,
                torch_threads=1,
                device=device,
            )
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from tunefleet.catalog import dataset_conf
    from tunefleet.cohort import train_cohort
    from tunefleet.cohort_plan import cohort_groups
    from tunefleet.train import train_one

    data = dataset_conf("breast_cancer").load()
    cfgs = configs(args.trials, args.device)
    started = time.perf_counter()
    one_by_one = [train_one(c, data).metrics["val_roc_auc"] for c in cfgs]
    t_one = time.perf_counter() - started
    started = time.perf_counter()
    cohort = [0.0] * len(cfgs)
    for group in cohort_groups(cfgs):
        for i, result in zip(group, train_cohort([cfgs[i] for i in group], data), strict=True):
            cohort[i] = result.metrics["val_roc_auc"]
    t_cohort = time.perf_counter() - started
    worst = float(np.max(np.abs(np.array(cohort) - np.array(one_by_one))))
    figures = {
        "trials": len(cfgs),
        "device": args.device,
        "groups": len(cohort_groups(cfgs)),
        "variant_seconds": {"train_one_each": t_one, "cohorts": t_cohort},
        "ratios": {"speedup": t_one / t_cohort},
        "max_val_roc_auc_difference": worst,
    }
    print(
        f"{len(cfgs)} breast_cancer configs on {args.device} ({figures['groups']} cohorts): "
        f"train_one each {t_one:.2f} s ({len(cfgs) / t_one:.1f} trials/s), "
        f"cohorts {t_cohort:.2f} s ({len(cfgs) / t_cohort:.1f} trials/s); speed-up {t_one / t_cohort:.1f}x; "
        f"largest val_roc_auc difference {worst:.2e}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
