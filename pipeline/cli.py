"""The ``tunefleet`` command line.

Bad input (unknown dataset, missing file, bad target column, unreachable tracking
server or Ray address, unknown model URI, prediction input with the wrong columns)
exits with code 2 and one line naming the problem and the fix.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import sys
from typing import NoReturn

from tunefleet.errors import TunefleetError

EXIT_USAGE = 2


def _cohort_size(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number or auto")
    return int(text)


def _search_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=int, help="number of trials (search.num_samples)")
    g.add_argument(
        "--backend", help="ray (default) or optuna (one process, no Ray); see tunefleet.search.backends.BACKENDS"
    )
    g.add_argument(
        "--cohort-size",
        type=_cohort_size,
        metavar="K|auto",
        help="trials trained together as one batched model (1: one per process; default auto)",
    )
    g.add_argument(
        "--cv",
        type=_cohort_size,
        metavar="K|auto",
        help="K-fold cross-validated trials on train + validation (split.cv_folds; 1: the validation split; default "
        "auto: 5 folds up to 10,000 rows); the test split is untouched",
    )
    g.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    g.add_argument("--cpus-per-trial", type=float, help="CPUs per trial; also its torch threads")
    g.add_argument("--gpus-per-trial", type=float, help="GPU share per trial, e.g. 0.25 = 4 trials per GPU")
    g.add_argument("--max-concurrent", type=int, help="cap on trials running at once")
    g.add_argument("--time-budget", type=float, help="stop starting trials after this many seconds")
    g.add_argument(
        "--scheduler",
        choices=["sh", "asha", "median", "none"],
        help="early stopping (search.scheduler.name; default sh: successive halving, judged together at each rung)",
    )
    g.add_argument("--storage-path", help="experiment storage: local dir, shared path or URI (search.storage_path)")
    g.add_argument("--name", help="experiment name (default: DATASET-timestamp); with --resume, which one")
    g.add_argument(
        "--resume",
        action="store_true",
        help="resume the latest (or --name) interrupted search, with the flags and --set values it started with",
    )
    g.add_argument(
        "--warm-start",
        action="store_true",
        help="start TPE from the finished trials of earlier searches of this dataset and split (read from MLflow)",
    )
    g.add_argument("--smoke", action="store_true", help="the real pipeline on a tiny budget (seconds)")
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config value, e.g. --set space.lr.high=0.5 (repeatable)",
    )
    t = p.add_argument_group("tracking")
    t.add_argument("--experiment", help="MLflow experiment name (default: tunefleet-DATASET)")
    t.add_argument("--model-name", help="registered model name (default: tunefleet-DATASET)")
    t.add_argument("--no-register", action="store_true", help="log the model but do not register or promote it")
    p.add_argument("--json", dest="json_path", help="write a machine-readable summary to this file")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunefleet",
        description="Hyperparameter search for PyTorch classifiers: "
        "Ray Tune + Optuna, tracked in MLflow, promoted in the Model Registry.",
    )
    parser.add_argument("--conf", help="conf/ directory (default: $TUNEFLEET_CONF, ./conf, or the source tree's)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", action="store_true", help="show the libraries' own log lines and warnings (hidden by default)"
    )
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else conf/tracking.yaml's sqlite:///mlruns.db)",
    )
    gate = argparse.ArgumentParser(add_help=False)
    gate.add_argument(
        "--gate",
        choices=["significant", "non_inferior", "point"],
        help="champion gate policy (default: conf/tracking.yaml registry.policy, significant)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, parents=[common])
    add_tracked = functools.partial(sub.add_parser, parents=[common, store])

    s = add_tracked(
        "search",
        parents=[common, store, gate],
        help="search one dataset, log to MLflow, register and promote the best model",
    )
    s.add_argument("dataset", nargs="?", help="a dataset in conf/datasets/ (see `tunefleet datasets`)")
    s.add_argument(
        "--data",
        help="a CSV, TSV or Parquet file (text also as .gz, .bz2, .xz, .zip; or a folder of Parquet parts) "
        "to use instead of a built-in dataset",
    )
    s.add_argument("--target", help="with --data: the label column")
    _search_flags(s)

    r = add_tracked("run-all", parents=[common, store, gate], help="search every dataset in conf/datasets/")
    _search_flags(r)

    add("datasets", help="list the datasets in conf/datasets/")
    add_tracked("models", help="registered models, versions, aliases and test metrics")

    pr = add_tracked("predict", help="predict with a registered model on a CSV/Parquet file")
    pr.add_argument("model_uri", help="e.g. models:/tunefleet-breast_cancer@champion")
    pr.add_argument(
        "--input",
        required=True,
        help="CSV, TSV or Parquet file (text also as .gz, .bz2, .xz, .zip; or a folder of Parquet parts) with the "
        "training feature columns (others, e.g. the label, are ignored)",
    )
    pr.add_argument("--output", help="write predictions here (.csv, .csv.gz or .parquet); default: print them as CSV")

    po = add_tracked(
        "promote", parents=[common, store, gate], help="move the champion alias to a model version by hand"
    )
    po.add_argument("name")
    po.add_argument("version")
    po.add_argument("--force", action="store_true", help="skip the metric comparison (the load check still runs)")

    ui = add_tracked("ui", help="start the MLflow UI on the configured store (127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000)

    sd = add("seeds", help="train each dataset's seed-tutorial config (core only) and print test metrics")
    sd.add_argument("--mnist-root")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tunefleet.pipeline.commands import COMMANDS
    from tunefleet.pipeline.quiet import configure_output

    args = build_parser().parse_args(argv)
    configure_output(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except TunefleetError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: logged trials are kept; continue with `tunefleet search ... --resume`", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """The ``tunefleet`` command: :func:`main`, then exit without tearing down every module.

    After the work is done, Python's normal exit spends 1-3 s freeing the object graphs
    of torch, Ray, MLflow and matplotlib. The exit handlers still run (Ray's shutdown,
    logging's flush) and the output is flushed; only the module teardown is skipped.
    """
    code = main()  # a search's backend is closed by then: a local Ray is down before the process goes
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
