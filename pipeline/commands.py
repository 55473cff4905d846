"""What each ``tunefleet`` command does (the parser is in :mod:`tunefleet.pipeline.cli`)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunefleet.errors import TunefleetError

if TYPE_CHECKING:
    from tunefleet.pipeline.settings import TrackingSettings


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The typed search flags that were given, as config key paths -> values (never re-parsed)."""
    from tunefleet.pipeline.api import FLAG_KEYS, flag_keys

    return flag_keys({name: getattr(args, name) for name in FLAG_KEYS})


def _search_one(
    args: argparse.Namespace, dataset: str | None, data_file: str | None = None, target: str | None = None
) -> int:
    from tunefleet.pipeline.api import run_search_lifecycle
    from tunefleet.pipeline.settings import RunOptions, load_tracking_settings
    from tunefleet.search.experiment import load_experiment

    # The spec, the settings, the data and --resume are checked before the lifecycle's imports
    # (torch, MLflow: seconds): a typo in a flag, a YAML file, a target column or a search
    # name fails fast.
    exp = load_experiment(
        dataset,
        data_file=data_file,
        target=target,
        overrides=args.overrides,
        values=flag_values(args),
        smoke=args.smoke,
        conf_dir=args.conf,
    )
    settings = load_tracking_settings(args.tracking_uri, args.conf, args.gate)
    options = RunOptions(
        experiment_name=args.experiment,
        model_name=args.model_name,
        register=not args.no_register,
        progress=not args.quiet,
        command=shlex.join(["tunefleet", *sys.argv[1:]]),
        verbose=args.verbose,
        warm_start=args.warm_start,
        smoke=args.smoke,
    )
    summary = run_search_lifecycle(exp, settings, options, address=args.address, name=args.name, resume=args.resume)
    from tunefleet.pipeline.summary import format_summary

    print(format_summary(summary), flush=True)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(summary.as_json(), indent=2, default=str))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from tunefleet.tables import check_data_path

    if args.data:
        check_data_path(Path(args.data))
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
    from tunefleet.catalog import catalog_names
    from tunefleet.search.experiment import load_experiment

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


def _client(args: argparse.Namespace, reads_store: bool = True) -> tuple[TrackingSettings, Any]:
    from tunefleet.pipeline.settings import load_tracking_settings
    from tunefleet.pipeline.store import check_store_exists, connect

    settings = load_tracking_settings(args.tracking_uri, args.conf, getattr(args, "gate", None))
    if not reads_store:  # predict from a model's folder: no store to read, none to make
        return settings, None
    check_store_exists(settings)  # models, promote and predict read what a search wrote
    return settings, connect(settings)


def cmd_models(args: argparse.Namespace) -> int:
    settings, client = _client(args)
    models = client.search_registered_models(max_results=1000)
    if not models:
        print(f"no registered models in {settings.tracking_uri}; run `tunefleet search DATASET` first")
        return 0
    print(f"{'model':<30}{'version':>8}  {'aliases':<22}{'gate metric':<18}{'test value':>11}  split")
    for rm in models:
        by_version: dict[str, list[str]] = {}
        for alias, version in (rm.aliases or {}).items():  # search_model_versions leaves aliases empty
            by_version.setdefault(str(version), []).append(alias)
        for mv in sorted(client.search_model_versions(f"name='{rm.name}'"), key=lambda v: int(v.version)):
            tags = mv.tags or {}
            aliases = ",".join(sorted(by_version.get(str(mv.version), []))) or "-"
            value = tags.get("gate_value", "nan")
            print(
                f"{rm.name:<30}{mv.version:>8}  {aliases:<22}{tags.get('gate_metric', '-'):<18}{float(value):>11.4f}  {tags.get('split_hash', '-')}"
            )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tunefleet.pipeline.predict import predict_file, read_input

    frame = read_input(Path(args.input))
    settings, _ = _client(args, reads_store=args.model_uri.startswith(("models:", "runs:")))
    return predict_file(args.model_uri, frame, Path(args.input), Path(args.output) if args.output else None, settings)


def cmd_promote(args: argparse.Namespace) -> int:
    from tunefleet.pipeline.registry import promote_by_hand
    from tunefleet.pipeline.tracker import MlflowTracker

    settings, client = _client(args)
    p = promote_by_hand(MlflowTracker(settings, client), args.name, args.version, args.force)
    print(
        f"{p.name} version {p.version} -> alias '{p.alias}' ({p.reason}); load with mlflow.pyfunc.load_model(\"{p.uri}\")"
    )
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The MLflow UI, run by the interpreter this CLI runs in (no activated venv needed)."""
    from tunefleet.pipeline.settings import load_tracking_settings
    from tunefleet.pipeline.store import check_store_exists

    settings = load_tracking_settings(args.tracking_uri, args.conf)
    check_store_exists(settings)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", settings.tracking_uri]
    # one worker process serves one person's browser; uvicorn's default of 4 starts four MLflow servers
    cmd += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {settings.tracking_uri}); Ctrl-C to stop", flush=True)
    # Its own session: a terminal's Ctrl-C reaches this process only, and the server is
    # then stopped once, as a whole: SIGTERM to its process group (uvicorn and its workers
    # shut down on it), SIGKILL if anything is left after 10 s. SIGTERM and SIGHUP to this
    # process take the same path, so stopping it never orphans the server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    # A parent that ignores SIGINT (a job started with `&`, some process managers, pytest-xdist
    # workers) passes that on, and Python then leaves Ctrl-C ignored: take it back explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # MLflow's job queue (GenAI scorers and the like; tunefleet uses none) runs seven polling
    # consumers that keep most of a core busy; off unless the user asks for it.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    with subprocess.Popen(cmd, start_new_session=True, env=env) as server:
        try:
            return server.wait()
        except KeyboardInterrupt:
            _stop_group(server)
            print("MLflow UI stopped", flush=True)
            return 0


def _stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to the process group, then SIGKILL to whatever of it is left after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (proc.poll() is None or _group_alive(proc.pid)):
            time.sleep(0.1)
        if not _group_alive(proc.pid):
            break
    proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
