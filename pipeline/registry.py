"""Model Registry: register the tested model, gate the ``champion`` alias, load by alias.

Aliases, not the deprecated stages. The gate: ``champion`` moves to a new version only
if that version loads from the registry and predicts exactly what the bundle predicts,
and its test metric is at least the current champion's on the same split hash;
otherwise it gets ``challenger`` and the reason is printed and tagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.model_io import ModelPackage
from pipeline.settings import TrackingSettings
from pipeline.tracker import MlflowTracker
from tunefleet.errors import TunefleetError, first_line
from tunefleet.metrics import better

TAG_METRIC, TAG_MODE, TAG_VALUE, TAG_SPLIT = "gate_metric", "gate_mode", "gate_value", "split_hash"


@dataclass
class Promotion:
    name: str
    version: str
    alias: str
    reason: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


def load_check(name: str, version: str, example: pd.DataFrame, expected: pd.DataFrame) -> str | None:
    """None if ``models:/name/version`` loads and reproduces ``expected``; else the reason."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        got = model.predict(example)
    except Exception as err:  # noqa: BLE001 - any load/predict failure blocks promotion
        return (
            f"version {version} failed to load or predict from the registry ({type(err).__name__}: {first_line(err)})"
        )
    if list(got.columns) != list(expected.columns) or list(got["label"]) != list(expected["label"]):
        return f"version {version} predicts different labels from the registry than the trained bundle"
    numeric = [c for c in expected.columns if c != "label"]
    if not np.allclose(got[numeric].to_numpy(float), expected[numeric].to_numpy(float), atol=1e-6):
        return f"version {version} predicts different probabilities from the registry than the trained bundle"
    return None


def _champion(client: Any, name: str, alias: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - MLflow raises when the alias does not exist
        return None


def gate(
    client: Any,
    settings: TrackingSettings,
    name: str,
    version: str,
    value: float,
    mode: str,
    split_hash: str,
    metric: str,
) -> tuple[bool, str]:
    """(promote?, reason) comparing the new version with the current champion."""
    champ = _champion(client, name, settings.champion_alias)
    if champ is None or str(champ.version) == str(version):
        return True, "first model registered under this name"
    tags = champ.tags or {}
    if tags.get(TAG_SPLIT) != split_hash:
        return False, (
            f"champion v{champ.version} was tested on split {tags.get(TAG_SPLIT)}, this on {split_hash}: "
            "not comparable; promote by hand with `tunefleet promote --force`"
        )
    if tags.get(TAG_METRIC) != metric:
        return False, f"champion v{champ.version} was gated on {tags.get(TAG_METRIC)}, not {metric}; promote by hand"
    old = float(tags.get(TAG_VALUE, "nan"))
    if np.isnan(old) or not better(old, value, mode):  # ties go to the newer model
        return True, f"{metric} {value:.4f} vs champion v{champ.version} {old:.4f}"
    return False, f"{metric} {value:.4f} is worse than champion v{champ.version}'s {old:.4f}"


def register_and_promote(
    tracker: MlflowTracker,
    model_uri: str,
    package: ModelPackage,
    name: str,
    *,
    metric: str,
    mode: str,
    value: float,
    split_hash: str,
    extra_tags: Mapping[str, str],
) -> Promotion:
    """Register the tested model, then give it ``champion`` if it passes the gate, else ``challenger``."""
    tags = {TAG_METRIC: metric, TAG_MODE: mode, TAG_VALUE: repr(float(value)), TAG_SPLIT: split_hash, **extra_tags}
    version = tracker.register(model_uri, name, {**tags, "run_id": tracker.parent_id})
    problem = load_check(name, version, package.example, package.expected)
    if problem:
        promote, reason = False, problem
    else:
        promote, reason = gate(tracker.client, tracker.settings, name, version, value, mode, split_hash, metric)
    alias = tracker.settings.champion_alias if promote else tracker.settings.challenger_alias
    tracker.set_alias(name, version, alias, reason)
    return Promotion(name, version, alias, reason)


def promote_by_hand(tracker: MlflowTracker, name: str, version: str, force: bool) -> Promotion:
    """``tunefleet promote``: the same load check; the metric gate unless ``--force``."""
    client, settings = tracker.client, tracker.settings
    import mlflow
    from mlflow.models import Model

    from tunefleet.bundle import ModelBundle

    try:
        mv = client.get_model_version(name, version)
        path = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
    except Exception:  # noqa: BLE001 - unknown name/version is a user error
        raise TunefleetError(f"no registered model {name!r} version {version}; see `tunefleet models`") from None
    example = Model.load(path).load_input_example(path)
    if isinstance(example, pd.DataFrame):
        expected = ModelBundle.load(f"{path}/artifacts/bundle").predict_table(example)
        problem = load_check(name, version, example, expected)
        if problem:
            raise TunefleetError(f"not promoted: {problem}")
    tags = mv.tags or {}
    if force:
        reason = "promoted by hand with --force"
    else:
        ok, reason = gate(
            client,
            settings,
            name,
            version,
            float(tags.get(TAG_VALUE, "nan")),
            tags.get(TAG_MODE, "max"),
            tags.get(TAG_SPLIT, ""),
            tags.get(TAG_METRIC, ""),
        )
        if not ok:
            raise TunefleetError(f"not promoted: {reason} (add --force to promote anyway)")
    tracker.set_alias(name, version, settings.champion_alias, reason)
    return Promotion(name, version, settings.champion_alias, reason)
