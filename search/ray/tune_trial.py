"""Worker side of the Ray backend: what runs inside a trial's process.

``ray_trial`` is the thin Tune adapter around the pure ``train_one``. It builds the
trial's config with the one builder (``ExperimentConfig.trial_config``), and sends
that config back with every report, so the driver logs the config the trial actually
trained with instead of rebuilding it.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tunefleet.cv import train_trial
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.result import save_trial_model
from tunefleet.search.schedule import report_epochs
from tunefleet.splits import PreparedData

CONFIG_KEY = "train_config"  # the JSON of the trial's TrainConfig, in every report
# Ray Train logs "Checkpoint successfully created at ..." at INFO for every trial's report
QUIET_LOGGERS = ("ray.train", "ray.tune")


class ThrottledReporter:
    """``train_one`` report hook: ``tune.report`` only when the scheduler can use it.

    That is at the scheduler's decision epochs (ASHA's rungs, or every N epochs for the
    median rule), plus at most every ``every_s`` seconds so long trials show progress.
    """

    def __init__(
        self, milestones: frozenset[int], every_epochs: int | None, every_s: float, last_epoch: int, config: str
    ) -> None:
        self.milestones, self.every_epochs, self.every_s = milestones, every_epochs, every_s
        self.last_epoch, self.config = last_epoch, config
        self._last = time.monotonic()

    def due(self, epoch: int, now: float) -> bool:
        if epoch == self.last_epoch:
            return False  # the final report goes out with the checkpoint
        if epoch in self.milestones or (self.every_epochs and epoch % self.every_epochs == 0):
            return True
        return now - self._last >= self.every_s

    def __call__(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Report when due; Tune's scheduler stops the trial itself, so this never asks for a stop."""
        from ray import tune

        now = time.monotonic()
        if self.due(epoch, now):
            self._last = now
            tune.report({**metrics, CONFIG_KEY: self.config})
        return False


def ray_trial(params: dict[str, Any], data: PreparedData, exp: ExperimentConfig, verbose: bool = False) -> None:
    """One Tune trial: train with the sampled ``params``; the last report carries the bundle."""
    import logging

    import ray
    from ray import tune

    if not verbose:  # set in the trial's own process, where Ray Train logs
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)

    config = exp.trial_config(params)
    config_json = config.model_dump_json()
    started = time.perf_counter()
    milestones, every = report_epochs(exp)
    reporter = ThrottledReporter(milestones, every, exp.search.report_every_s, config.epochs, config_json)
    result = train_trial(config, data, report=reporter)
    final = {
        **result.metrics,
        "epoch": result.metrics["epochs_run"],
        "done_training": 1.0,
        "node_id": ray.get_runtime_context().get_node_id(),
        "device": result.device,
        "train_seconds": time.perf_counter() - started,
        CONFIG_KEY: config_json,
    }
    with tempfile.TemporaryDirectory() as tmp:
        save_trial_model(result.bundle, result.val_probabilities, tmp)
        (Path(tmp) / "history.json").write_text(json.dumps(result.history))
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(tmp))
