"""Ray Tune trials, the driver's side: Ray Tune + OptunaSearch (seeded TPE) + a scheduler.

Speed choices, from measurements on a 2-core machine (32 breast_cancer trials):
actors are reused (a fresh actor re-imports torch: 95.7 s -> 12.7 s), reports are
throttled to the scheduler's decision epochs (each ``tune.report`` costs ~1.7 ms), each
CPU trial runs one torch thread per CPU it holds, and the data is put in Ray's object
store once (``tune.with_parameters``) instead of being reloaded per trial. What runs
inside a trial is in :mod:`tunefleet.search.ray.tune_trial`. Ray Tune is imported only when a Tune
search runs: checking an address, or a cohort search on Ray, needs none of it (2 s).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tunefleet.config import is_uri
from tunefleet.search.backends import Lease, SearchRequest
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import TrialRecord
from tunefleet.splits import PreparedData


def _scheduler(exp: ExperimentConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    sched = exp.search.scheduler
    if sched.name in ("sh", "asha"):  # Tune trials run on their own: judged on arrival, by Ray's ASHA, at our rungs
        max_t = exp.space.max_epochs()
        return ASHAScheduler(
            time_attr="epoch",
            max_t=max_t,
            grace_period=min(sched.grace_period, max_t),
            reduction_factor=sched.reduction_factor,
        )
    if sched.name == "median":
        # min_time_slice: never pause a trial to let waiting ones run while too few have
        # finished to take a median. A trial checkpoints only with its result, so a paused one
        # restarted from scratch once its end had been reported: it trained twice. (Typed int
        # by Ray, but only inf beats the -inf a trial's last pause starts at.)
        never = math.inf
        return MedianStoppingRule(
            time_attr="epoch", grace_period=sched.grace_period, min_samples_required=3,
            min_time_slice=never,  # type: ignore[arg-type]
        )  # fmt: skip
    return FIFOScheduler()


TRIAL_DIR_PREFIX = "trial_"


def _trial_dirname(trial: Any) -> str:
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def storage_uri(storage_path: str) -> str:
    """Ray needs absolute local paths; URIs (s3://, gs://, file://) pass through."""
    return storage_path if is_uri(storage_path) else str(Path(storage_path).expanduser().resolve())


def _warm_storage(exp: ExperimentConfig, warm: tuple[Any, ...]) -> dict[str, Any]:
    """OptunaSearch arguments that start its study with the warm-start trials (it loads an existing study)."""
    if not warm:
        return {}
    import optuna

    storage = optuna.storages.InMemoryStorage()
    direction = optuna.study.StudyDirection.MAXIMIZE if exp.mode == "max" else optuna.study.StudyDirection.MINIMIZE
    optuna.create_study(storage=storage, study_name="optuna", direction=direction).add_trials(list(warm))
    return {"storage": storage, "study_name": "optuna"}


class TuneLoop:
    """Ray Tune trials, one config each: what ``--backend ray`` runs when trials are not batched into cohorts."""

    def check(self, exp: ExperimentConfig) -> None:
        """Any spec runs as Tune trials (the backend checked the address)."""

    def can_resume(self, exp: ExperimentConfig, name: str) -> bool:
        from ray import tune

        return bool(tune.Tuner.can_restore(f"{storage_uri(exp.search.storage_path)}/{name}"))

    def open(self, exp: ExperimentConfig, data: PreparedData, lease: Lease, *, verbose: bool) -> TuneSession:
        return TuneSession(exp, lease.slots, verbose)


@contextmanager
def _replays_quiet(quiet: bool) -> Iterator[None]:
    """On ``--resume``, no Optuna warning for each epoch a restarted trial reports again.

    A trial that was running when the search stopped restarts from its first epoch (it
    checkpoints only with its result) and reports those epochs again to the same Optuna
    trial, which keeps the first value and warns "The reported value is ignored because
    this `step=N` is already reported", once per epoch. The trial is seeded, so the values
    are the ones kept: nothing to act on. ``--verbose`` shows them.
    """
    with warnings.catch_warnings():
        if quiet:
            warnings.filterwarnings("ignore", message=r"The reported value is ignored because this `step=")
        yield


# What Tune logs of failed trials that tunefleet says already: a trial's progress line says
# "failed" and its child run carries the error; a search that no trial finished ends naming
# the first error. Tune printed each failed trial's whole traceback, then every failed id.
TUNE_REPEATS = ("Trial task failed for trial", "Trials did not complete")
TUNE_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.tune")


def _not_a_tune_repeat(record: logging.LogRecord) -> bool:
    """The filter (one function: ``addFilter`` adds it once, session after session)."""
    return not str(record.msg).startswith(TUNE_REPEATS)


class TuneSession:
    def __init__(self, exp: ExperimentConfig, concurrency: int, verbose: bool = False) -> None:
        self.exp, self.concurrency, self.verbose = exp, concurrency, verbose

    def run(self, request: SearchRequest) -> list[TrialRecord]:
        """Run (or restore and finish) the Tune experiment; return every trial's record."""
        from tunefleet.search.ray.tune_callback import RELAY, make_record

        if not self.verbose:  # trials the time budget stopped before a first report: their records say so
            logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
            # "The `callbacks.on_step_end` operation took 0.604 s": Tune's advice on its own loop, here
            # about logging a trial to MLflow on a busy machine; --verbose shows it
            logging.getLogger("ray.tune.utils.util").setLevel(logging.ERROR)
            for name in TUNE_LOGGERS:
                logging.getLogger(name).addFilter(_not_a_tune_repeat)
        with RELAY.connected(request.observers), _replays_quiet(request.resume and not self.verbose):
            grid = self._tuner(request).fit()
            records = []
            for i in range(len(grid)):
                res = grid[i]
                trial_id = Path(res.path).name.removeprefix(TRIAL_DIR_PREFIX)
                record = RELAY.emitted.get(trial_id)
                if record is None and not res.config:
                    continue  # never given its config: it was still waiting when the time budget ran out
                if record is None:  # a trial the callback did not see (e.g. it ended before a driver crash)
                    history = res.metrics_dataframe.to_dict("records") if res.metrics_dataframe is not None else []
                    record = make_record(
                        request.exp, trial_id, dict(res.config or {}), res.metrics, res.error, res.checkpoint, history
                    )
                    RELAY.emit(record)
                records.append(record)
            return records

    def _tuner(self, request: SearchRequest) -> Any:
        import optuna
        from ray import tune
        from ray.tune.logger import JsonLoggerCallback
        from ray.tune.search.optuna import OptunaSearch

        from tunefleet.search.ray.tune_callback import ObserverCallback
        from tunefleet.search.ray.tune_trial import ray_trial

        exp, s = request.exp, request.exp.search
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        trainable = tune.with_resources(
            tune.with_parameters(ray_trial, data=request.data, exp=exp, verbose=self.verbose),
            {"cpu": s.resources.cpus_per_trial, "gpu": s.resources.gpus_per_trial},
        )
        # Ctrl-C ends a Tune search as it ends a cohort search: KeyboardInterrupt, the trials
        # logged so far kept, `--resume` to go on. Tune's own handler returned instead, with
        # the unstarted trials among the results, and the search went on to log and register.
        os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
        # Tune lets only one trial wait for resources when a searcher is used, which on
        # short trials serialises them (measured: 29 s -> 17 s for 32 trials on 2 CPUs).
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(max(2, self.concurrency)))
        path = f"{storage_uri(s.storage_path)}/{request.name}"
        if request.resume:
            return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
        searcher = OptunaSearch(
            exp.sampler(request.data.task),
            metric=exp.metric,
            mode=exp.mode,
            sampler=optuna.samplers.TPESampler(seed=s.seed),
            points_to_evaluate=list(request.points) or None,
            **_warm_storage(exp, request.warm),
        )
        return tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=exp.metric,
                mode=exp.mode,
                search_alg=searcher,
                scheduler=_scheduler(exp),
                num_samples=s.num_samples,
                max_concurrent_trials=s.max_concurrent_trials,
                time_budget_s=s.time_budget_s,
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=request.name,
                storage_path=storage_uri(s.storage_path),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=s.max_failures),
                callbacks=[JsonLoggerCallback(), ObserverCallback(exp, path)],
            ),
        )
