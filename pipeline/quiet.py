"""Quiet by default: a command prints tunefleet's own lines; ``--verbose`` brings the libraries' back.

The noisy sources are fixed where they are (no read-only tensors, a typed pyfunc
``predict``, registration through the client, Ray's auth mode stated, Ray Train's
checkpoint logger quieted inside each trial by ``search.ray_worker``). What is left is
MLflow's INFO logging (database migrations, input-example validation) and its download
progress bars, turned off here, once, through MLflow's own knobs: its logger, and
``MLFLOW_LOGGING_LEVEL`` / ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` for this process and
the ones it starts. Warnings and errors still print.
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
    logging.getLogger("mlflow").setLevel(level)  # in case it already was
