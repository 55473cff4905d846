"""Quiet by default: a command prints tunefleet's own lines; ``--verbose`` brings the libraries' back.

The noisy sources are fixed where they are (no read-only tensors, a typed pyfunc
``predict``, registration through the client, Ray's auth mode stated, Ray Train's
checkpoint logger quieted inside each trial by ``tunefleet.search.ray.tune_trial``). What is left is
MLflow's INFO logging (database migrations, input-example validation), its download
progress bars and its run links, turned off here, once, through MLflow's own knobs: its
logger, and ``MLFLOW_LOGGING_LEVEL`` / ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` /
``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT`` for this process and the ones it starts (and
GitPython's missing-git notice). Warnings and errors still print.
"""

from __future__ import annotations

import logging
import os


def configure_output(verbose: bool) -> None:
    """Set the libraries' log levels for this process (the CLI calls it once, first)."""
    level = logging.INFO if verbose else logging.WARNING
    if not verbose:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # tqdm bars on model downloads
        # With a tracking server, every ended run prints two "View run/experiment" links;
        # the summary's `browse` line already names the parent run.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # Where no git executable is installed (slim images), GitPython prints a 20-line
        # notice when MLflow looks for the source commit; without git there is none to record.
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    logging.getLogger("mlflow").setLevel(level)  # in case it already was
