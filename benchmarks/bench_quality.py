"""Is the promoted model as good as a default scikit-learn model? Measured as a user would.

For every table of :mod:`quality_data` and every split seed: our own stratified 80/20 split
of the file; ``tunefleet search --data train.csv --target y`` with the defaults on the 80%;
``tunefleet predict`` of the registered version on the held-out 20%; and two anchors at
their defaults, fit on the same 80% and scored on the same rows: ``LogisticRegression``
(median-impute, one-hot, scale) and ``HistGradientBoostingClassifier`` (native categoricals).

It prints accuracy, log loss and wall time per table, and the mean accuracy regret against
the better anchor (per table, the anchor with the higher mean accuracy) with a paired 95%
interval: a two-level bootstrap that resamples each table's split seeds, then each chosen
run's test rows, scoring ours and the anchor on the same rows. ``--json`` keeps every run's
per-row results, so ``--compare A.json B.json`` gives the paired effect of a change.

    python benchmarks/bench_quality.py --json results/quality.json
    python benchmarks/bench_quality.py --tables wine,penguins --seeds 0 --extra "--trials 48"
    python benchmarks/bench_quality.py --compare results/before.json results/after.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import TABLES

EPS = 1e-15
N_BOOT = 2000


def split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=0.2, stratify=frame["y"], random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def scored(y: np.ndarray, proba: np.ndarray, classes: list[str], labels: np.ndarray | None = None) -> dict[str, Any]:
    """Per-row correctness of ``labels`` (default: the most probable class) and log loss
    (probabilities in ``classes`` order). Ours is scored by the labels ``tunefleet predict``
    writes, at the champion's own threshold, as a user reads them; the anchors by ``predict``."""
    y = np.asarray(y).astype(str)
    codes = np.array([classes.index(v) for v in y])
    p_true = np.clip(proba[np.arange(len(codes)), codes], EPS, 1.0)
    chosen = np.array(classes)[proba.argmax(axis=1)] if labels is None else np.asarray(labels).astype(str)
    return {"correct": (chosen == y).tolist(), "loss": (-np.log(p_true)).tolist()}


def anchors(train: pd.DataFrame, test: pd.DataFrame, classes: list[str]) -> dict[str, dict[str, Any]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, Xt, y = train.drop(columns="y"), test.drop(columns="y"), train["y"].to_numpy()
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    numbers = [c for c in X.columns if c not in text]
    encode = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers)]
        + (
            [
                (
                    "text",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="(empty)"), OneHotEncoder(handle_unknown="ignore")
                    ),
                    text,
                )
            ]
            if text
            else []
        )
    )
    out = {}
    started = time.perf_counter()
    with warnings.catch_warnings():  # lbfgs's 100 iterations at its defaults: a user sees the same
        warnings.simplefilter("ignore")
        lr = make_pipeline(encode, LogisticRegression()).fit(X, y)
    out["logreg"] = {
        **scored(test["y"].to_numpy(), _ordered(lr, Xt, classes), classes),
        "wall_s": time.perf_counter() - started,
    }
    cat = lambda f: f.astype({c: pd.CategoricalDtype(sorted(X[c].dropna().unique())) for c in text})  # noqa: E731
    started = time.perf_counter()
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype").fit(cat(X), y)
    out["hgb"] = {
        **scored(test["y"].to_numpy(), _ordered(hgb, cat(Xt), classes), classes),
        "wall_s": time.perf_counter() - started,
    }
    return out


def _ordered(model: Any, X: pd.DataFrame, classes: list[str]) -> np.ndarray:
    proba = model.predict_proba(X)
    return proba[:, [list(model.classes_).index(c) for c in classes]]


def ours(train_csv: Path, test: pd.DataFrame, classes: list[str], work: Path, cmd: list[str], env: dict[str, str],
         extra: list[str]) -> dict[str, Any]:  # fmt: skip
    """``tunefleet search`` on the training file, ``tunefleet predict`` of what it registered on the rest."""
    store = f"sqlite:///{work}/mlruns.db"
    common = ["--tracking-uri", store]
    started = time.perf_counter()
    search = subprocess.run(
        [*cmd, "search", "--data", str(train_csv), "--target", "y", "--json", str(work / "search.json"), "--quiet",
         "--storage-path", str(work / "runs"), *common, *extra],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if search.returncode != 0:
        raise RuntimeError(f"search failed: {search.stderr.strip().splitlines()[-1:]}")
    summary = json.loads((work / "search.json").read_text())
    test_csv = work / "test.csv"
    test.drop(columns="y").to_csv(test_csv, index=False)
    model = f"models:/{summary['registered_model']}/{summary['model_version']}"
    predicted = subprocess.run(
        [*cmd, "predict", model, "--input", str(test_csv), "--output", str(work / "pred.csv"), *common],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if predicted.returncode != 0:
        raise RuntimeError(f"predict failed: {predicted.stderr.strip().splitlines()[-1:]}")
    pred = pd.read_csv(work / "pred.csv")
    if "probability" in pred.columns:  # binary: the positive class is the second of the sorted labels
        proba = np.column_stack([1 - pred["probability"], pred["probability"]])
    else:
        proba = pred[[f"probability_{c}" for c in classes]].to_numpy()
    row = scored(test["y"].to_numpy(), proba, classes, pred["label"].to_numpy())
    labels_agree = float((pred["label"].astype(str).to_numpy() == np.array(classes)[proba.argmax(axis=1)]).mean())
    return {**row, "wall_s": wall, "labels_match_argmax": labels_agree, "summary": {
        k: summary.get(k) for k in ("trials", "best_config", "test_metrics", "alias", "promotion_reason", "champion")
    }}  # fmt: skip


def run_table(
    name: str, seeds: list[int], cmd: list[str], env: dict[str, str], extra: list[str], keep: Path | None
) -> list[dict]:
    frame = TABLES[name]()
    classes = sorted(frame["y"].astype(str).unique())
    runs = []
    for seed in seeds:
        train, test = split(frame, seed)
        with tempfile.TemporaryDirectory(dir=keep) as tmp:
            work = Path(tmp)
            train_csv = work / f"{name}.csv"
            train.to_csv(train_csv, index=False)
            result = {"table": name, "seed": seed, "n_train": len(train), "n_test": len(test), "classes": classes}
            result["anchors"] = anchors(train, test, classes)
            result["ours"] = ours(train_csv, test, classes, work, cmd, env, extra)
        runs.append(result)
        acc = {k: np.mean(v["correct"]) for k, v in {"ours": result["ours"], **result["anchors"]}.items()}
        print(f"  {name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items())
              + f"  ({result['ours']['wall_s']:.0f} s)", flush=True)  # fmt: skip
    return runs


def _boot_mean(runs_by_table: dict[str, list[tuple[np.ndarray, np.ndarray]]], rng: np.random.Generator) -> np.ndarray:
    """Two-level bootstrap of the mean paired difference over runs: seeds within a table, then rows within a run."""
    out = np.empty(N_BOOT)
    for b in range(N_BOOT):
        means = []
        for runs in runs_by_table.values():
            for i in rng.integers(0, len(runs), len(runs)):
                a, c = runs[i]
                rows = rng.integers(0, len(a), len(a))
                means.append(float(np.mean(a[rows] - c[rows])))
        out[b] = np.mean(means)
    return out


def paired(runs: list[dict], get_a: Any, get_b: Any, what: str, seed: int = 0) -> tuple[float, float, float]:
    """Mean over runs of mean(a - b) per row, and its 95% two-level bootstrap interval."""
    by_table: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for r in runs:
        by_table.setdefault(r["table"], []).append(
            (np.asarray(get_a(r)[what], float), np.asarray(get_b(r)[what], float))
        )
    point = float(np.mean([np.mean(a - b) for pairs in by_table.values() for a, b in pairs]))
    boot = _boot_mean(by_table, np.random.default_rng(seed))
    low, high = np.percentile(boot, [2.5, 97.5])
    return point, float(low), float(high)


def better_anchor(runs: list[dict]) -> str:
    return max(("logreg", "hgb"), key=lambda k: np.mean([np.mean(r["anchors"][k]["correct"]) for r in runs]))


def report(runs: list[dict], label: str) -> dict[str, Any]:
    tables = sorted({r["table"] for r in runs}, key=list(TABLES).index)
    print(f"\n== quality: {label}, {len(runs)} runs ({len(tables)} tables x seeds {sorted({r['seed'] for r in runs})})")
    print(f"{'table':<14}{'ours acc':>9}{'logreg':>8}{'hgb':>8}{'regret [95%]':>24}{'ours loss':>11}{'logreg':>8}"
          f"{'loss - logreg [95%]':>26}{'wall s':>8}")  # fmt: skip
    summary: dict[str, Any] = {"label": label, "tables": {}}
    regrets = []
    for name in tables:
        rs = [r for r in runs if r["table"] == name]
        anchor = better_anchor(rs)
        regret = paired(rs, lambda r, a=anchor: r["anchors"][a], lambda r: r["ours"], "correct")
        loss = paired(rs, lambda r: r["ours"], lambda r: r["anchors"]["logreg"], "loss")
        acc = {k: float(np.mean([np.mean(r["anchors"][k]["correct"]) for r in rs])) for k in ("logreg", "hgb")}
        mine = float(np.mean([np.mean(r["ours"]["correct"]) for r in rs]))
        losses = {k: float(np.mean([np.mean(g(r)["loss"]) for r in rs])) for k, g in
                  (("ours", lambda r: r["ours"]), ("logreg", lambda r: r["anchors"]["logreg"]))}  # fmt: skip
        wall = float(np.mean([r["ours"]["wall_s"] for r in rs]))
        print(f"{name:<14}{mine:>9.4f}{acc['logreg']:>8.4f}{acc['hgb']:>8.4f}"
              f"{f'{regret[0] * 100:+.2f} [{regret[1] * 100:+.2f}, {regret[2] * 100:+.2f}]':>24}"
              f"{losses['ours']:>11.4f}{losses['logreg']:>8.4f}{f'{loss[0]:+.4f} [{loss[1]:+.4f}, {loss[2]:+.4f}]':>26}"
              f"{wall:>8.0f}")  # fmt: skip
        summary["tables"][name] = {"accuracy": mine, "anchors": acc, "better_anchor": anchor, "regret_points": [x * 100 for x in regret],
                                   "log_loss": losses, "log_loss_minus_logreg": list(loss), "wall_s": wall}  # fmt: skip
        regrets += [(r, anchor) for r in rs]
    by_table: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for r, anchor in regrets:
        by_table.setdefault(r["table"], []).append(
            (np.asarray(r["anchors"][anchor]["correct"], float), np.asarray(r["ours"]["correct"], float)))  # fmt: skip
    point = float(np.mean([np.mean(a - b) for pairs in by_table.values() for a, b in pairs]))
    low, high = np.percentile(_boot_mean(by_table, np.random.default_rng(0)), [2.5, 97.5])
    worse = [n for n, t in summary["tables"].items() if t["log_loss_minus_logreg"][1] > 0]
    print(f"mean accuracy regret against the better anchor: {point * 100:+.2f} points, 95% paired interval "
          f"[{low * 100:+.2f}, {high * 100:+.2f}] (regret > 0: the anchor is better)")  # fmt: skip
    print(f"log loss worse than logistic regression's beyond its interval: {', '.join(worse) or 'none'}")
    summary.update(mean_regret_points=[point * 100, low * 100, high * 100], log_loss_worse=worse)
    return summary


def compare(a_path: Path, b_path: Path) -> None:
    """The paired effect of B against A on the same runs' test rows (accuracy, log loss), per table and overall."""
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    key = lambda r: (r["table"], r["seed"])  # noqa: E731
    pairs = {key(r): r for r in a["runs"]}
    both = [{"table": r["table"], "A": pairs[key(r)]["ours"], "B": r["ours"]} for r in b["runs"] if key(r) in pairs]
    print(f"== {b['label']} against {a['label']}: {len(both)} paired runs (B - A; accuracy in points)")
    for name in [*sorted({r["table"] for r in both}, key=list(TABLES).index), "ALL"]:
        rs = [r for r in both if name in ("ALL", r["table"])]
        acc = paired(rs, lambda r: r["B"], lambda r: r["A"], "correct")
        loss = paired(rs, lambda r: r["B"], lambda r: r["A"], "loss")
        print(f"{name:<14} accuracy {acc[0] * 100:+.2f} [{acc[1] * 100:+.2f}, {acc[2] * 100:+.2f}]   "
              f"log loss {loss[0]:+.4f} [{loss[1]:+.4f}, {loss[2]:+.4f}]")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, from: {', '.join(TABLES)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--label", default="tunefleet")
    parser.add_argument("--json", dest="json_path", help="write every run (per-row results) and the summary here")
    parser.add_argument(
        "--command", default=f"{sys.executable} -m tunefleet", help="how to run tunefleet (another checkout's, say)"
    )
    parser.add_argument("--pythonpath", help="PYTHONPATH for that command (an older layout's checkout)")
    parser.add_argument(
        "--extra", default="", help='more flags for `tunefleet search`, e.g. "--set search.sampler=random"'
    )
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="paired effect of B against A")
    args = parser.parse_args()
    if args.compare:
        compare(Path(args.compare[0]), Path(args.compare[1]))
        return 0
    env = {**os.environ, **({"PYTHONPATH": args.pythonpath} if args.pythonpath else {})}
    runs: list[dict] = []

    def save(summary: dict | None) -> None:  # after every table: a failure later loses nothing
        if args.json_path:
            Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_path).write_text(json.dumps({"label": args.label, "command": args.command, "extra": args.extra,
                                                        "summary": summary, "runs": runs}))  # fmt: skip

    for name in args.tables.split(","):
        runs += run_table(
            name, [int(s) for s in args.seeds.split(",")], shlex.split(args.command), env, shlex.split(args.extra), None
        )
        save(None)
    save(report(runs, args.label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
