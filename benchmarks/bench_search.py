"""Search-throughput benchmark on 32 fixed breast_cancer configurations.

Runs, in one process tree on this machine:
  (a) the naive Ray Tune recipe: default TuneConfig (a fresh actor per trial), data
      reloaded in every trial, a per-sample DataLoader, ``tune.report`` every epoch;
  (b) tunefleet's Ray driver (reused actors, throttled reports, object-store data);
  (c) tunefleet's Optuna backend (one process, no Ray);
  (d) the floor: a framework-free 2-process pool calling ``train_one``;
  (e) tunefleet's cohort search on Ray: the 32 configs asked at once, split into cohorts
      (by layer count, costly ones split again for the 2 slots: ``plan_cohorts``), each
      trained as one batched model (``run_cohort``) in a Ray task, 2 at once. It runs
      twice: first on cold Ray workers (each imports torch before its first cohort, ~5 s
      here), then on the same, now warm workers; the ratio d/e uses the warm run, since
      (d)'s forked workers have torch imported already, and d/e_cold_workers is printed too.
Every variant trains the same 32 configurations to completion (no early stopping) and
prints wall times plus the ratios b/a, a/b, b/d (targets: b/d <= 2.0, a/b >= 5) and d/e
(target >= 5). (e) must also match (d)'s validation ROC AUC per config within 1e-4.

A second scenario (``--scenario search``) is a real TPE search with early stopping (the
default successive halving; Ray's ASHA for the Tune trials): 256 trials in cohorts against 32
trials without them (Tune trials, cohort_size 1), wall time and best validation ROC AUC of
each. Both scenarios train on the split, not on cross-validation folds, as the floor does.

    python benchmarks/bench_search.py [--trials 32] [--skip-naive] [--scenario fixed|search|all] [--json PATH]

``--json`` writes ``{"variant_seconds": {...}, "ratios": {...}, ...}``.

Why cohorts run as Ray tasks and not as Tune trials holding a cohort: TPE must see
every member and the rounds must judge every member, which Tune's one-config trials cannot
give; and in this benchmark a Tune trial costs (b - d/2 x 2)/32 ~ 0.2 s of driver
bookkeeping each, a Ray task ~1 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
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
        if p["optimizer"] == "sgd":  # SGD's learning rate is its own hyperparameter since issue 31
            p["momentum"] = float(rng.uniform(0, 0.95))
            p["sgd_lr"] = p.pop("lr")
        points.append(p)
    return points


def _experiment(storage: str, backend: str, n: int, cohort_size: int | str = 1, scheduler: str = "none") -> Any:
    from tunefleet.search import load_experiment

    # the fixed configs of every stop since 20: the space holds them (batch sizes and epochs named,
    # not fitted; both learning rates over the points' range), and trials train on the split, as
    # the floor's train_one does (no cross-validation)
    space = [
        "space.batch_size={type: choice, values: [16, 32, 64, 128]}",
        "space.epochs={type: int, low: 10, high: 60}",
        "space.lr={type: loguniform, low: 3.0e-4, high: 0.1}",
        "space.sgd_lr={type: loguniform, low: 3.0e-4, high: 0.1}",
    ]
    return load_experiment(
        "breast_cancer",
        overrides=space,
        values={
            "search.storage_path": storage,
            "search.backend": backend,
            "search.num_samples": n,
            "search.cohort_size": cohort_size,
            "search.scheduler.name": scheduler,
            "split.cv_folds": 1,
        },
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
        torch.optim.SGD(model.parameters(), lr=p["sgd_lr"], momentum=p["momentum"], weight_decay=p["weight_decay"])
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
def run_tunefleet(
    points: list[dict[str, Any]], storage: str, backend: str, data: Any, cohort_size: int = 1
) -> tuple[float, dict[int, float]]:
    """Wall time and each point's validation ROC AUC (by its index in ``points``)."""
    from tunefleet.search import run_search

    exp = _experiment(storage, backend, len(points), cohort_size)
    started = time.perf_counter()
    result = run_search(exp, data=data, points=points, progress=False)
    elapsed = time.perf_counter() - started
    assert result.counts()["finished"] == len(points), result.counts()
    scores = {}
    for trial in result.trials:
        index = next(i for i, p in enumerate(points) if p == {k: trial.params.get(k) for k in p})
        scores[index] = trial.metric("val_roc_auc")
    return elapsed, scores


def run_search_scenario(storage: str, data: Any) -> dict[str, float]:
    """A real TPE search with early stopping: 256 trials in cohorts vs 32 Tune trials (cohort_size 1)."""
    from tunefleet.search import run_search

    out: dict[str, float] = {}
    for label, n, k in (("search32_no_cohorts", 32, 1), ("search256_cohorts", 256, "auto")):
        exp = _experiment(storage, "ray", n, cohort_size=k, scheduler="sh")
        exp = exp.model_copy(update={"metric": "val_roc_auc", "mode": "max"})
        started = time.perf_counter()
        result = run_search(exp, data=data, progress=False)
        out[f"{label}_seconds"] = time.perf_counter() - started
        out[f"{label}_best_val_roc_auc"] = result.best.metric("val_roc_auc") if result.best else float("nan")
        print(
            f"  {label:<22} {out[f'{label}_seconds']:7.1f} s  best val_roc_auc "
            f"{out[f'{label}_best_val_roc_auc']:.4f}  {result.counts()}",
            flush=True,
        )
    return out


# ---- (d) the floor ----------------------------------------------------------------------
_POOL_DATA: Any = None


def _pool_init(data: Any) -> None:
    global _POOL_DATA
    _POOL_DATA = data


def _pool_train(config: Any) -> float:
    from tunefleet.train import train_one

    return train_one(config, _POOL_DATA).metrics["val_roc_auc"]


def run_floor(points: list[dict[str, Any]], storage: str, data: Any) -> tuple[float, dict[int, float]]:
    exp = _experiment(storage, "optuna", len(points))
    configs = [exp.trial_config(p).model_copy(update={"torch_threads": 1}) for p in points]
    started = time.perf_counter()
    with mp.get_context("fork").Pool(N_CPUS, initializer=_pool_init, initargs=(data,)) as pool:
        scores = pool.map(_pool_train, configs, chunksize=1)
    assert len(scores) == len(points)
    return time.perf_counter() - started, dict(enumerate(scores))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--skip-naive", action="store_true", help="skip (a), the slowest variant")
    parser.add_argument("--scenario", choices=["fixed", "search", "all"], default="fixed")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    import torch

    from tunefleet.catalog import dataset_conf
    from tunefleet.search.ray.connect import AUTH_LOGGER

    torch.set_num_threads(1)
    data = dataset_conf("breast_cancer").load()
    storage = tempfile.mkdtemp(prefix="tunefleet-bench-")
    times: dict[str, float] = {}
    extra: dict[str, float] = {}
    if args.scenario in ("fixed", "all"):
        points = fixed_points(args.trials)
        print(
            f"{args.trials} fixed breast_cancer configurations, {os.cpu_count()} CPUs; timing each variant...",
            flush=True,
        )
        times["d_floor_pool"], floor_scores = run_floor(points, storage, data)
        print(f"  (d) 2-process pool          {times['d_floor_pool']:7.1f} s", flush=True)
        times["c_tunefleet_optuna"], _ = run_tunefleet(points, storage, "optuna", data)
        print(f"  (c) tunefleet optuna        {times['c_tunefleet_optuna']:7.1f} s", flush=True)
    logging.getLogger(AUTH_LOGGER).setLevel(logging.ERROR)  # Ray's token-auth notice, as the CLI quiets it
    started = time.perf_counter()
    ray.init(num_cpus=N_CPUS, include_dashboard=False, configure_logging=False)
    extra["ray_init_seconds"] = time.perf_counter() - started
    if args.scenario in ("fixed", "all"):
        times["b_tunefleet_ray"], _ = run_tunefleet(points, storage, "ray", data)
        print(f"  (b) tunefleet ray           {times['b_tunefleet_ray']:7.1f} s", flush=True)
        # First on cold Ray workers (each imports torch before its first cohort), then again
        # on the now warm ones: the floor's forked workers have torch imported already.
        extra["e_cohorts_ray_cold_workers"], _ = run_tunefleet(points, storage, "ray", data, cohort_size=len(points))
        times["e_cohorts_ray"], cohort_scores = run_tunefleet(points, storage, "ray", data, cohort_size=len(points))
        worst = max(abs(cohort_scores[i] - floor_scores[i]) for i in floor_scores)
        extra["e_max_abs_val_roc_auc_diff"] = worst
        print(
            f"  (e) tunefleet cohorts (ray) {times['e_cohorts_ray']:7.1f} s on warm workers, "
            f"{extra['e_cohorts_ray_cold_workers']:.1f} s on cold ones  (max |val_roc_auc - (d)| = {worst:.1e})"
        )
        if not args.skip_naive:
            times["a_naive_ray"] = run_naive(points, storage)
            print(f"  (a) naive Ray Tune recipe   {times['a_naive_ray']:7.1f} s", flush=True)
    if args.scenario in ("search", "all"):
        print("TPE searches with early stopping on breast_cancer (val_roc_auc, max):", flush=True)
        extra.update(run_search_scenario(storage, data))
    print(f"  ray.init {extra['ray_init_seconds']:.1f} s, not counted in any variant")
    ray.shutdown()
    ratios = _ratios(times, extra)
    for key, value in ratios.items():
        print(f"{key} = {value:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"variant_seconds": times, "ratios": ratios, **extra}, fh, indent=2)
    return 0


def _ratios(times: dict[str, float], extra: dict[str, float]) -> dict[str, float]:
    """The ratios the targets are stated in (b/d <= 2, a/b >= 5, d/e >= 5; 256 cohorts / 32 plain < 1)."""
    out = {}
    if "b_tunefleet_ray" in times:
        out["b_over_d"] = times["b_tunefleet_ray"] / times["d_floor_pool"]
        out["d_over_e"] = times["d_floor_pool"] / times["e_cohorts_ray"]
        out["d_over_e_cold_workers"] = times["d_floor_pool"] / extra["e_cohorts_ray_cold_workers"]
    if "a_naive_ray" in times:
        out["a_over_b"] = times["a_naive_ray"] / times["b_tunefleet_ray"]
    if "search256_cohorts_seconds" in extra:
        out["search256_cohorts_over_search32"] = (
            extra["search256_cohorts_seconds"] / extra["search32_no_cohorts_seconds"]
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
