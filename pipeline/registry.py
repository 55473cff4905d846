"""Model Registry: register the tested model, gate the ``champion`` alias, load by alias.

Aliases, not the deprecated stages. The gate: ``champion`` moves to a new version only
if that version loads from the registry and predicts exactly what the bundle predicts,
and it passes :mod:`tunefleet.pipeline.gate` against the current champion (same split hash, then a
paired test on the same test rows under the configured policy), or, as the first version
under its name, is not significantly worse than the logistic-regression baseline on those
rows; otherwise it gets ``challenger`` and the reason is printed and tagged.

Every gate decision reads the split's test rows, so each version also records how many
decisions its split hash has made (:data:`TAG_DECISIONS`): a champion chosen among many
on the same rows has an optimistic test value (the winner's curse), and the summary says
so past :data:`MANY_DECISIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tunefleet.bundle import ModelBundle
from tunefleet.errors import TunefleetError, first_line
from tunefleet.evaluation import SplitScores
from tunefleet.pipeline.gate import (
    TAG_METRIC,
    TAG_MODE,
    TAG_SPLIT,
    TAG_VALUE,
    Verdict,
    champion_bundle,
    comparable,
    first_verdict,
    paired,
    point_verdict,
    statistical_verdict,
)
from tunefleet.pipeline.model_io import ModelPackage
from tunefleet.pipeline.settings import TrackingSettings
from tunefleet.pipeline.tracker import TAG_CHAMPION, TAG_PROMOTION, TAG_REASON, MlflowTracker

TAG_DECISIONS = "split_decisions"  # gate decisions made on this version's split hash, this one included
MANY_DECISIONS = 10


@dataclass
class Promotion:
    name: str
    version: str
    alias: str
    reason: str
    split_decisions: int = 0  # how many gate decisions the test rows have made, this one included

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def load_check(name: str, version: str, example: pd.DataFrame, expected: pd.DataFrame) -> str | None:
    """None if ``models:/name/version`` loads and reproduces ``expected``; else the reason."""
    import mlflow

    try:
        # suppress_warnings: no check of the model's pinned requirements against this environment,
        # which just logged them (MLflow's scan of every installed package costs ~2.5 s)
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}", suppress_warnings=True)
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
    *,
    metric: str,
    mode: str,
    value: float,
    split_hash: str,
    test: SplitScores | None,
    baseline: SplitScores | None,
) -> Verdict:
    """Should ``version`` take ``champion``? (``test``: its scores on the test rows, for the paired
    comparison; ``baseline``: the baseline's on the same rows, which gate the first version.)"""
    champ = _champion(client, name, settings.champion_alias)
    if champ is None or str(champ.version) == str(version):
        if test is None or baseline is None:
            return first_verdict(settings.registry, None)
        return first_verdict(settings.registry, paired(settings.registry, metric, test, baseline))
    problem = comparable(champ, split_hash, metric)
    if problem:
        return Verdict(False, problem)
    old = float((champ.tags or {}).get(TAG_VALUE, "nan"))
    if settings.registry.policy == "point":
        return point_verdict(metric, value, old, mode, str(champ.version))
    if test is None:
        verdict = point_verdict(metric, value, old, mode, str(champ.version))
        return Verdict(verdict.promote, f"{verdict.reason}; the test rows could not be re-loaded for a paired test")
    return statistical_verdict(
        settings.registry, metric, test, champion_bundle(name, str(champ.version)), str(champ.version)
    )


def register_and_promote(
    tracker: MlflowTracker,
    model_uri: str,
    package: ModelPackage,
    name: str,
    *,
    metric: str,
    mode: str,
    test: SplitScores,
    split_hash: str,
    baseline: SplitScores | None,
    extra_tags: Mapping[str, str],
) -> Promotion:
    """Register the tested model, then give it ``champion`` if it passes the gate, else ``challenger``."""
    value = test.metrics()[metric]
    decisions = split_decisions(tracker.client, split_hash) + 1
    tags = {
        TAG_METRIC: metric, TAG_MODE: mode, TAG_VALUE: repr(float(value)), TAG_SPLIT: split_hash,
        TAG_DECISIONS: str(decisions), **extra_tags,
    }  # fmt: skip
    version = tracker.register(model_uri, name, {**tags, "run_id": tracker.parent_id})
    problem = load_check(name, version, package.example, package.expected)
    if problem:
        verdict = Verdict(False, problem)
    else:
        verdict = gate(
            tracker.client, tracker.settings, name, version,
            metric=metric, mode=mode, value=value, split_hash=split_hash, test=test, baseline=baseline,
        )  # fmt: skip
    alias = tracker.settings.champion_alias if verdict.promote else tracker.settings.challenger_alias
    tracker.set_alias(name, version, alias, verdict.reason, verdict.tags())
    return Promotion(name, version, alias, verdict.reason, decisions)


def split_decisions(client: Any, split_hash: str) -> int:
    """How many gate decisions these test rows have made: the versions, under any name, gated on this split."""
    versions = client.search_model_versions(f"tags.{TAG_SPLIT} = '{split_hash}'")
    return sum(1 for mv in versions if TAG_PROMOTION in (mv.tags or {}))


def registered_before(tracker: MlflowTracker, name: str, champion: str) -> Promotion | None:
    """The version this search registered for the same best trial before it was resumed, if any.

    A search resumed after its driver died past the registration, or resumed once more after
    it had ended, has nothing new to register: registering again made a second version of
    the same model, which the gate then compared with the first. A resume that found a new
    best trial registers as usual, and so does one whose driver died between registering a
    version and gating it (the version has no ``promotion`` tag yet).
    """
    for mv in tracker.client.search_model_versions(f"name = '{name}' and run_id = '{tracker.parent_id}'"):
        tags = mv.tags or {}
        if tags.get(TAG_CHAMPION) == champion and TAG_PROMOTION in tags:
            aliases = tracker.client.get_model_version(name, mv.version).aliases  # a search's results leave them out
            alias = aliases[0] if aliases else ""
            reason = f"kept: registered by this search before the resume ({tags.get(TAG_REASON, 'no reason recorded')})"
            return Promotion(name, str(mv.version), alias, reason, int(tags.get(TAG_DECISIONS, "0")))
    return None


def _rescore(tags: Mapping[str, str], bundle: ModelBundle) -> tuple[SplitScores | None, SplitScores | None]:
    """The version's and the baseline's scores on its test rows, re-loaded from its dataset's conf
    (None when that cannot be done); the baseline is fitted again, as the search fitted it."""
    from tunefleet.baseline import logistic_regression
    from tunefleet.search.experiment import load_experiment

    try:
        exp = load_experiment(tags["dataset"])
        data = exp.load()
    except Exception:  # noqa: BLE001 - e.g. a user file searched without a conf file
        return None, None
    if data.split_hash != tags.get(TAG_SPLIT):
        return None, None
    test = SplitScores.of(bundle, data, "test")
    return test, SplitScores.of_rows(logistic_regression(data, exp.threshold, exp.search.seed).bundle, test)


def promote_by_hand(tracker: MlflowTracker, name: str, version: str, force: bool) -> Promotion:
    """``tunefleet promote``: the same load check; the metric gate unless ``--force``."""
    client, settings = tracker.client, tracker.settings
    import mlflow
    from mlflow.models import Model

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
        verdict = Verdict(True, "promoted by hand with --force")
    else:
        test, baseline = _rescore(tags, ModelBundle.load(f"{path}/artifacts/bundle"))
        verdict = gate(
            client, settings, name, version,
            metric=tags.get(TAG_METRIC, ""), mode=tags.get(TAG_MODE, "max"),
            value=float(tags.get(TAG_VALUE, "nan")), split_hash=tags.get(TAG_SPLIT, ""), test=test, baseline=baseline,
        )  # fmt: skip
        print(f"gate: {verdict.reason}", flush=True)
        if not verdict.promote:
            raise TunefleetError(f"not promoted: {verdict.reason} (add --force to promote anyway)")
    tracker.set_alias(name, version, settings.champion_alias, verdict.reason, verdict.tags())
    return Promotion(name, version, settings.champion_alias, verdict.reason, int(tags.get(TAG_DECISIONS, "0")))
