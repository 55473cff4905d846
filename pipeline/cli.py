"""The ``tunefleet`` command line.

Bad input (unknown dataset, missing file, bad target column, unreachable tracking
server or Ray address, unknown model URI, prediction input with the wrong columns)
exits with code 2 and one line naming the problem and the fix.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from tunefleet.errors import TunefleetError

EXIT_USAGE = 2


def _search_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=int, help="number of trials (search.num_samples)")
    g.add_argument("--backend", choices=["ray", "optuna"], help="ray (default) or optuna (one process, no Ray)")
    g.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    g.add_argument("--cpus-per-trial", type=float, help="CPUs per trial; also its torch threads")
    g.add_argument("--gpus-per-trial", type=float, help="GPU share per trial, e.g. 0.25 = 4 trials per GPU")
    g.add_argument("--max-concurrent", type=int, help="cap on trials running at once")
    g.add_argument("--time-budget", type=float, help="stop starting trials after this many seconds")
    g.add_argument("--scheduler", choices=["asha", "median", "none"], help="early-stopping scheduler / pruner")
    g.add_argument("--storage-path", help="experiment storage: local dir, shared path or URI (search.storage_path)")
    g.add_argument("--name", help="experiment name (default: DATASET-timestamp); with --resume, which one")
    g.add_argument("--resume", action="store_true", help="resume the latest (or --name) interrupted search")
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
    t.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)")
    t.add_argument("--experiment", help="MLflow experiment name (default: tunefleet-DATASET)")
    t.add_argument("--model-name", help="registered model name (default: tunefleet-DATASET)")
    t.add_argument("--no-register", action="store_true", help="log the model but do not register or promote it")
    p.add_argument("--json", dest="json_path", help="write a machine-readable summary to this file")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    pairs = [
        ("trials", "search.num_samples"),
        ("backend", "search.backend"),
        ("cpus_per_trial", "search.resources.cpus_per_trial"),
        ("gpus_per_trial", "search.resources.gpus_per_trial"),
        ("max_concurrent", "search.max_concurrent_trials"),
        ("time_budget", "search.time_budget_s"),
        ("scheduler", "search.scheduler.name"),
        ("storage_path", "search.storage_path"),
    ]
    return [
        *args.overrides,
        *(f"{key}={getattr(args, attr)}" for attr, key in pairs if getattr(args, attr) is not None),
    ]


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
    sub = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, parents=[common])

    s = add("search", help="search one dataset, log to MLflow, register and promote the best model")
    s.add_argument("dataset", nargs="?", help="a dataset in conf/datasets/ (see `tunefleet datasets`)")
    s.add_argument("--data", help="a CSV or Parquet file to use instead of a built-in dataset")
    s.add_argument("--target", help="with --data: the label column")
    _search_flags(s)

    r = add("run-all", help="search every dataset in conf/datasets/")
    _search_flags(r)

    add("datasets", help="list the datasets in conf/datasets/")
    m = add("models", help="registered models, versions, aliases and test metrics")
    m.add_argument("--tracking-uri")

    pr = add("predict", help="predict with a registered model on a CSV/Parquet file")
    pr.add_argument("model_uri", help="e.g. models:/tunefleet-breast_cancer@champion")
    pr.add_argument(
        "--input",
        required=True,
        help="CSV or Parquet file with the training feature columns (others, e.g. the label, are ignored)",
    )
    pr.add_argument("--output", help="write predictions here (.csv or .parquet); default: print them as CSV")
    pr.add_argument("--tracking-uri")

    po = add("promote", help="move the champion alias to a model version by hand")
    po.add_argument("name")
    po.add_argument("version")
    po.add_argument("--force", action="store_true", help="skip the metric comparison (the load check still runs)")
    po.add_argument("--tracking-uri")

    ui = add("ui", help="start the MLflow UI on the configured store (127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--tracking-uri")

    sd = add("seeds", help="train each dataset's seed-tutorial config (core only) and print test metrics")
    sd.add_argument("--mnist-root")
    return parser


def _search_one(
    args: argparse.Namespace, dataset: str | None, data_file: str | None = None, target: str | None = None
) -> int:
    from pipeline.lifecycle import format_summary, run_pipeline
    from pipeline.settings import load_tracking_settings
    from search.spec import load_experiment

    exp = load_experiment(
        dataset,
        data_file=data_file,
        target=target,
        overrides=_flag_overrides(args),
        smoke=args.smoke,
        conf_dir=args.conf,
    )
    settings = load_tracking_settings(args.tracking_uri, args.conf)
    summary = run_pipeline(
        exp,
        settings,
        name=args.name,
        resume=args.resume,
        address=args.address,
        experiment_name=args.experiment,
        model_name=args.model_name,
        register=not args.no_register,
        progress=not args.quiet,
        command=shlex.join(["tunefleet", *sys.argv[1:]]),
        verbose=args.verbose,
    )
    print(format_summary(summary), flush=True)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(summary.as_json(), indent=2, default=str))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    if args.data and not Path(args.data).is_file():
        raise TunefleetError(f"data file {args.data} does not exist; check the path passed with --data")
    return _search_one(args, args.dataset, args.data, args.target)


def cmd_run_all(args: argparse.Namespace) -> int:
    from tunefleet.catalog import catalog_names

    failed = []
    for name in catalog_names(args.conf):
        print(f"\n### {name}", flush=True)
        try:
            _search_one(args, name)
        except TunefleetError as err:
            print(f"error: {name}: {err}", file=sys.stderr, flush=True)
            failed.append(name)
    if failed:
        print(f"run-all: {len(failed)} dataset(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from search.spec import load_experiment
    from tunefleet.catalog import catalog_names

    print(f"{'name':<16}{'loader':<15}{'metric':<16}{'mode':<6}{'threshold':<22}split")
    for name in catalog_names(args.conf):
        exp = load_experiment(name, conf_dir=args.conf)
        s = exp.split
        thr = f"{exp.threshold.mode}/{exp.threshold.objective}"
        print(
            f"{name:<16}{exp.dataset.loader:<15}{exp.metric:<16}{exp.mode:<6}{thr:<22}{s.train:g}/{s.val:g}/{s.test:g} seed {s.seed}"
        )
    print("\nor any file: tunefleet search --data FILE.csv|FILE.parquet --target COLUMN")
    return 0


def _client(args: argparse.Namespace) -> Any:
    from pipeline.settings import load_tracking_settings
    from pipeline.tracking import connect

    settings = load_tracking_settings(args.tracking_uri, args.conf)
    return settings, connect(settings)


def cmd_models(args: argparse.Namespace) -> int:
    settings, client = _client(args)
    models = client.search_registered_models(max_results=1000)
    if not models:
        print(f"no registered models in {settings.tracking_uri}; run `tunefleet search DATASET` first")
        return 0
    print(f"{'model':<30}{'version':>8}  {'aliases':<22}{'gate metric':<18}{'test value':>11}  split")
    for rm in models:
        for mv in sorted(client.search_model_versions(f"name='{rm.name}'"), key=lambda v: int(v.version)):
            tags = mv.tags or {}
            aliases = ",".join(getattr(mv, "aliases", []) or []) or "-"
            value = tags.get("gate_value", "nan")
            print(
                f"{rm.name:<30}{mv.version:>8}  {aliases:<22}{tags.get('gate_metric', '-'):<18}{float(value):>11.4f}  {tags.get('split_hash', '-')}"
            )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pipeline.predict import predict_file

    settings, _ = _client(args)
    return predict_file(args.model_uri, Path(args.input), Path(args.output) if args.output else None, settings)


def cmd_promote(args: argparse.Namespace) -> int:
    from pipeline.registry import promote_by_hand

    settings, client = _client(args)
    p = promote_by_hand(client, settings, args.name, args.version, args.force)
    print(
        f"{p.name} version {p.version} -> alias '{p.alias}' ({p.reason}); load with mlflow.pyfunc.load_model(\"{p.uri}\")"
    )
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The MLflow UI, run by the interpreter this CLI runs in (no activated venv needed)."""
    import subprocess

    from pipeline.settings import load_tracking_settings

    settings = load_tracking_settings(args.tracking_uri, args.conf)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", settings.tracking_uri]
    cmd += ["--host", "127.0.0.1", "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {settings.tracking_uri}); Ctrl-C to stop", flush=True)
    # Its own session: a terminal's Ctrl-C reaches this process only, and the server is
    # then asked to stop once, as a whole (its workers are shut down by it, not killed).
    with subprocess.Popen(cmd, start_new_session=True) as server:
        try:
            return server.wait()
        except KeyboardInterrupt:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
            print("MLflow UI stopped", flush=True)
            return 0


def cmd_seeds(args: argparse.Namespace) -> int:
    from tunefleet.seeds import main as seeds_main

    return seeds_main(
        [*(["--mnist-root", args.mnist_root] if args.mnist_root else []), *(["--conf", args.conf] if args.conf else [])]
    )


COMMANDS = {
    "search": cmd_search,
    "run-all": cmd_run_all,
    "datasets": cmd_datasets,
    "models": cmd_models,
    "predict": cmd_predict,
    "promote": cmd_promote,
    "ui": cmd_ui,
    "seeds": cmd_seeds,
}


def main(argv: list[str] | None = None) -> int:
    from pipeline.quiet import configure_output

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


if __name__ == "__main__":
    sys.exit(main())
