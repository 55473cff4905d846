"""Tracking settings from conf/tracking.yaml, the environment and flags."""

from __future__ import annotations

import os
from pathlib import Path

from tunefleet.config import StrictModel, find_conf_dir, load_yaml, parse_model


class TrackingSettings(StrictModel):
    tracking_uri: str = "sqlite:///mlruns.db"
    artifact_location: str = "mlartifacts"
    experiment_prefix: str = "tunefleet-"
    registered_model_prefix: str = "tunefleet-"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    @property
    def embedded(self) -> bool:
        """True for a local database store (we then choose the artifact root)."""
        return not self.tracking_uri.startswith(("http://", "https://", "databricks"))

    def experiment_name(self, dataset: str) -> str:
        return f"{self.experiment_prefix}{dataset}"

    def model_name(self, dataset: str) -> str:
        return f"{self.registered_model_prefix}{dataset}"

    def artifact_uri(self) -> str | None:
        if not self.embedded:
            return None  # the server decides (--default-artifact-root / --serve-artifacts)
        if "://" in self.artifact_location:
            return self.artifact_location
        return Path(self.artifact_location).expanduser().resolve().as_uri()


def load_tracking_settings(tracking_uri: str | None = None, conf_dir: str | Path | None = None) -> TrackingSettings:
    """conf/tracking.yaml, then MLFLOW_TRACKING_URI, then --tracking-uri."""
    path = find_conf_dir(conf_dir) / "tracking.yaml"
    raw = load_yaml(path) if path.is_file() else {}
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        raw["tracking_uri"] = uri
    return parse_model(TrackingSettings, raw, str(path))
