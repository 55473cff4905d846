"""Search-throughput benchmark on 32 fixed breast_cancer configurations.

Runs, in one process tree on this machine:
  (a) the naive Ray Tune recipe: default TuneConfig (a fresh actor per trial), data
      reloaded in every trial, a per-sample DataLoader, ``tune.report`` every epoch;
  (b) tunefleet's Ray driver (reused actors, throttled reports, object-store data);
  (c) tunefleet's Optuna backend (one process, no Ray);
  (d) the floor: a framework-free 2-process pool calling ``train_one``.
Every variant trains the same 32 configurations to completion (no early stopping) and
prints wall times plus the ratios b/a, a/b and b/d (targets: b/d <= 2.0, a/b >= 5).

    python benchmarks/bench_search.py [--trials 32] [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

N_CPUS = 2


def fixed_points(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n reproducible configurations in the search space's own parameter names."""
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(n):
        p: dict[str, Any] = {
            "lr": float(10 ** rng.uniform(-3.5, -1)),
            "batch_size": int(rng.choice([16, 32, 64, 128])),
            "n_layers": int(rng.integers(0, 3)),
            "epochs": int(rng.integers(10, 61)),
            "optimizer": str(rng.choice(["adam", "sgd"])),
            "weight_decay": float(10 ** rng.uniform(-6, -2)),
        }
        for i in range(p["n_layers"]):
            p[f"width_{i}"] = int(rng.choice([16, 32, 64, 128]))
        if p["optimizer"] == "sgd":
            p["momentum"] = float(rng.uniform(0, 0.95))
        points.append(p)
    return points


def _experiment(storage: str, backend: str, n: int) -> Any:
    from search import load_experiment

    return load_experiment(
        "breast_cancer",
        overrides=[
            f"search.storage_path={storage}",
            f"search.backend={backend}",
            f"search.num_samples={n}",
            "search.scheduler.name=none",
        ],
    )


# ---- (a) the naive recipe ----------------------------------------------------------
def naive_trainable(config: dict[str, Any]) -> None:
    import torch
    from ray import tune
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from torch.utils.data import DataLoader, TensorDataset

    p = config["point"]
    raw = load_breast_cancer()
    X_tr, X_va, y_tr, y_va = train_test_split(raw.data, raw.target, test_size=0.25, stratify=raw.target, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_va = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (X_tr, X_va))
    y_tr, y_va = torch.tensor(y_tr, dtype=torch.float32), torch.tensor(y_va, dtype=torch.float32)
    layers: list[torch.nn.Module] = []
    width = X_tr.shape[1]
    for i in range(p["n_layers"]):
        layers += [torch.nn.Linear(width, p[f"width_{i}"]), torch.nn.ReLU()]
        width = p[f"width_{i}"]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
    opt = (
        torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=p.get("momentum", 0.0), weight_decay=p["weight_decay"])
        if p["optimizer"] == "sgd"
        else torch.optim.Adam(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(X_tr, y_tr), batch_size=p["batch_size"], shuffle=True)
    for epoch in range(p["epochs"]):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb).squeeze(-1), yb).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(X_va).squeeze(-1), y_va))
        tune.report({"val_loss": val_loss, "epoch": epoch + 1})


def run_naive(points: list[dict[str, Any]], storage: str) -> float:
    from ray import tune

    os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)  # the recipe's defaults: all loggers on
    started = time.perf_counter()
    tuner = tune.Tuner(
        naive_trainable,
        param_space={"point": tune.grid_search(points)},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min"),
        run_config=tune.RunConfig(name="naive", storage_path=storage, verbose=0),
    )
    grid = tuner.fit()
    assert len(grid) == len(points) and not grid.errors
    return time.perf_counter() - started


# ---- (b), (c) tunefleet ---------------------------------------------------------------
def run_tunefleet(points: list[dict[str, Any]], storage: str, backend: str, data: Any) -> tuple[float, float]:
    from search import run_search

    exp = _experiment(storage, backend, len(points))
    started = time.perf_counter()
    result = run_search(exp, data=data, points=points, progress=False)
    elapsed = time.perf_counter() - started
    assert result.counts()["finished"] == len(points), result.counts()
    assert result.best is not None
    return elapsed, result.best.metric("val_roc_auc")


# ---- (d) the floor ----------------------------------------------------------------------
_POOL_DATA: Any = None


def _pool_init(data: Any) -> None:
    global _POOL_DATA
    _POOL_DATA = data


def _pool_train(config: Any) -> float:
    from tunefleet.train import train_one

    return train_one(config, _POOL_DATA).metrics["val_roc_auc"]


def run_floor(points: list[dict[str, Any]], storage: str, data: Any) -> float:
    exp = _experiment(storage, "optuna", len(points))
    configs = [exp.trial_config(p).model_copy(update={"torch_threads": 1}) for p in points]
    started = time.perf_counter()
    with mp.get_context("fork").Pool(N_CPUS, initializer=_pool_init, initargs=(data,)) as pool:
        scores = pool.map(_pool_train, configs, chunksize=1)
    assert len(scores) == len(points)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--skip-naive", action="store_true", help="skip (a), the slowest variant")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    import torch

    from tunefleet.catalog import dataset_conf

    torch.set_num_threads(1)
    points = fixed_points(args.trials)
    data = dataset_conf("breast_cancer").load()
    storage = tempfile.mkdtemp(prefix="tunefleet-bench-")
    times: dict[str, float] = {}
    print(
        f"{args.trials} fixed breast_cancer configurations, {os.cpu_count()} CPUs; timing each variant...", flush=True
    )
    times["d_floor_pool"] = run_floor(points, storage, data)
    print(f"  (d) 2-process pool          {times['d_floor_pool']:7.1f} s", flush=True)
    times["c_tunefleet_optuna"], _ = run_tunefleet(points, storage, "optuna", data)
    print(f"  (c) tunefleet optuna        {times['c_tunefleet_optuna']:7.1f} s", flush=True)
    started = time.perf_counter()
    ray.init(num_cpus=N_CPUS, include_dashboard=False, configure_logging=False)
    times["ray_init"] = time.perf_counter() - started
    times["b_tunefleet_ray"], best = run_tunefleet(points, storage, "ray", data)
    print(
        f"  (b) tunefleet ray           {times['b_tunefleet_ray']:7.1f} s  (best val_roc_auc {best:.4f}; ray.init "
        f"{times['ray_init']:.1f} s not counted)",
        flush=True,
    )
    if not args.skip_naive:
        times["a_naive_ray"] = run_naive(points, storage)
        print(f"  (a) naive Ray Tune recipe   {times['a_naive_ray']:7.1f} s", flush=True)
    ray.shutdown()
    b, d = times["b_tunefleet_ray"], times["d_floor_pool"]
    print(f"b/d = {b / d:.2f} (target <= 2.0)")
    if "a_naive_ray" in times:
        print(f"b/a = {b / times['a_naive_ray']:.3f}   a/b = {times['a_naive_ray'] / b:.1f} (target >= 5)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(times, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
