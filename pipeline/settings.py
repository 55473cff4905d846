"""Tracking settings from conf/tracking.yaml, the environment and flags; and how to run one search (its flags, typed once)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tunefleet.config import StrictModel, find_conf_dir, load_yaml, parse_model
from tunefleet.errors import ConfigError


class GateSettings(StrictModel):
    """When ``champion`` moves to a new version (the ``registry:`` section of conf/tracking.yaml).

    Every comparison is paired on the same test rows and two-sided at ``alpha``, with the
    ``1 - alpha`` interval of the difference (:mod:`tunefleet.compare`). ``significant``: p <
    alpha and the interval above ``min_delta``; ``non_inferior``: the interval's low end
    above ``-margin``; ``point``: its test metric at least the champion's (no statistics).
    """

    policy: Literal["significant", "non_inferior", "point"] = "significant"
    alpha: float = Field(0.05, gt=0, lt=1)
    min_delta: float = Field(0.0, ge=0)
    margin: float = Field(0.01, ge=0)


# Stores that hold runs and the model registry: databases (SQLAlchemy URIs) and MLflow servers.
STORE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks"})


def check_store_uri(uri: str) -> str:
    """A tracking URI MLflow 3 can track and register models in, refused here, not by MLflow mid-search."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri or uri == "databricks" else ""
    if scheme in STORE_SCHEMES:
        return uri
    if scheme in ("", "file"):
        raise ValueError(
            f"{uri!r} is a file store, which MLflow 3 no longer offers for tracking; use a database, "
            "e.g. sqlite:///mlruns.db (the default)"
        )
    raise ValueError(
        f"unsupported scheme {scheme!r} in {uri!r}; use sqlite:///PATH (the default), a database URI "
        "(postgresql://...) or an MLflow server (http://host:5000)"
    )


class TrackingSettings(StrictModel):
    """conf/tracking.yaml, typed once: the store, names, aliases, what each trial's run charts, the gate."""

    tracking_uri: str = "sqlite:///mlruns.db"
    artifact_location: str = "mlartifacts"
    experiment_prefix: str = "tunefleet-"
    registered_model_prefix: str = "tunefleet-"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    registry: GateSettings = GateSettings()
    # Which metrics each trial's run charts per epoch (its results are logged either way):
    # main: the train and validation losses and the search's metric; all: every metric of
    # the epoch's row (11 for a binary task). Every row stays in the trial's record on disk.
    curves: Literal["main", "all"] = "main"

    _store = field_validator("tracking_uri")(check_store_uri)

    def curve_keys(self, metric: str) -> frozenset[str] | None:
        """The epoch-row keys a trial's run gets a curve of (None: every one)."""
        return None if self.curves == "all" else frozenset({"train_loss", "val_loss", metric})

    @property
    def embedded(self) -> bool:
        """True for a local database store (we then choose the artifact root)."""
        return not self.tracking_uri.startswith(("http://", "https://", "databricks"))

    def experiment_name(self, dataset: str) -> str:
        return f"{self.experiment_prefix}{dataset}"

    def model_name(self, dataset: str, given: str | None = None, smoke: bool = False) -> str:
        """The registered model's name (``given``, or the prefix and the dataset's name; a
        ``--smoke`` search's with ``-smoke`` after it, so that a model of a few trials never
        becomes the champion real searches must beat), refused now if MLflow would refuse
        it at registration, after the whole search."""
        name = (given or f"{self.registered_model_prefix}{dataset}") + ("-smoke" if smoke else "")
        if not name.strip() or "/" in name or ":" in name:
            raise ConfigError(
                f"registered model name {name!r} must not be empty or hold '/' or ':' (MLflow's rule); "
                "pass another --model-name"
            )
        return name

    def artifact_uri(self) -> str | None:
        if not self.embedded:
            return None  # the server decides (--default-artifact-root / --serve-artifacts)
        if "://" in self.artifact_location:
            return self.artifact_location
        return Path(self.artifact_location).expanduser().resolve().as_uri()


def load_tracking_settings(
    tracking_uri: str | None = None, conf_dir: str | Path | None = None, gate_policy: str | None = None
) -> TrackingSettings:
    """conf/tracking.yaml, then MLFLOW_TRACKING_URI, then --tracking-uri (and --gate)."""
    path = find_conf_dir(conf_dir) / "tracking.yaml"
    raw = load_yaml(path) if path.is_file() else {}
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        raw["tracking_uri"] = uri
    if gate_policy:
        raw["registry"] = {**(raw.get("registry") or {}), "policy": gate_policy}
    given = " and --tracking-uri" if tracking_uri else " and MLFLOW_TRACKING_URI" if uri else ""
    return parse_model(TrackingSettings, raw, f"{path}{given}")


@dataclass(frozen=True)
class RunOptions:
    """How to run one search: the CLI's flags, typed once."""

    experiment_name: str | None = None
    model_name: str | None = None
    register: bool = True
    progress: bool = True
    command: str | None = None
    verbose: bool = False
    warm_start: bool = False
    smoke: bool = False  # registers under its own name (TrackingSettings.model_name)
