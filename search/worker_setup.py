"""Runs once in every Ray worker process of a tunefleet search, before its first trial.

Ray calls it through the job's ``worker_process_setup_hook``. It silences Ray Train's
per-checkpoint INFO line ("Checkpoint successfully created at ...") at its logger,
unless the driver ran with ``--verbose`` (``TUNEFLEET_VERBOSE=1`` in the job's
environment), and imports the training core so the first trial does not pay for it.
"""

from __future__ import annotations

import logging
import os

VERBOSE_ENV = "TUNEFLEET_VERBOSE"
QUIET_LOGGERS = ("ray.train", "ray.tune")


def setup_worker() -> None:
    if os.environ.get(VERBOSE_ENV) != "1":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    import tunefleet.train  # noqa: F401 - warm the import (torch) before the first trial
