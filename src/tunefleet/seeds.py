"""Train every catalog dataset with its seed tutorial's configuration and print test metrics.

``python -m tunefleet.seeds [--mnist-root DIR]``: a quick end-to-end check of the core
(no search, no Ray, no MLflow). Test metrics are computed once, on the chosen model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from tunefleet.catalog import catalog_names, dataset_conf, read_dataset_file
from tunefleet.errors import TunefleetError
from tunefleet.evaluation import evaluate
from tunefleet.train import train_one


def run_seed(name: str, conf_dir: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Train ``name``'s seed config; return its split sizes, val and test metrics."""
    conf = dataset_conf(name, conf_dir, read_dataset_file(name, conf_dir))
    if options:
        conf = conf.model_copy(
            update={"dataset": conf.dataset.model_copy(update={"options": {**conf.dataset.options, **options}})}
        )
    data = conf.load()
    started = time.perf_counter()
    result = train_one(conf.seed_train_config(torch_threads=1, seed=0), data)
    test = evaluate(result.bundle, data, "test")
    train = evaluate(result.bundle, data, "train")
    return {
        "dataset": name,
        "sizes": data.sizes(),
        "split_hash": data.split_hash,
        "seconds": time.perf_counter() - started,
        **result.metrics,
        **train,
        **test,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-root", help="folder holding MNIST/raw (default: conf/datasets/mnist.yaml)")
    parser.add_argument("--conf", help="conf directory")
    args = parser.parse_args(argv)
    print(f"{'dataset':<15}{'train/val/test':>16}{'train_acc':>10}{'test_acc':>10}{'test_f1*':>10}{'seconds':>9}")
    try:
        for name in catalog_names(args.conf):
            opts = {"root": args.mnist_root, "download": False} if name == "mnist" and args.mnist_root else {}
            row = run_seed(name, args.conf, **opts)
            sizes = "/".join(str(v) for v in row["sizes"].values())
            f1 = row.get("test_f1", row.get("test_macro_f1", float("nan")))
            print(
                f"{name:<15}{sizes:>16}{row['train_accuracy']:>10.3f}{row['test_accuracy']:>10.3f}{f1:>10.3f}{row['seconds']:>9.2f}"
            )
    except TunefleetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("* f1 for binary datasets, macro F1 for multi-class")
    return 0


if __name__ == "__main__":
    sys.exit(main())
