"""The champion gate: does a new version take ``champion`` from the current one?

Same split hash and gate metric first (otherwise the numbers are not comparable). Then,
under the configured policy (:class:`tunefleet.pipeline.settings.GateSettings`), the current
champion is loaded from the registry and predicts the same test rows as the challenger,
and the two are compared paired (:func:`tunefleet.compare.compare`): so the alias moves
on evidence, not on the noise of one test split. The reason names the difference, its
interval and p, and is tagged on the version with the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tunefleet.bundle import ModelBundle
from tunefleet.compare import Comparison, Predictions, compare
from tunefleet.evaluation import SplitScores
from tunefleet.metrics import better
from tunefleet.pipeline.settings import GateSettings

TAG_METRIC, TAG_MODE, TAG_VALUE, TAG_SPLIT = "gate_metric", "gate_mode", "gate_value", "split_hash"


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    comparison: Comparison | None = None

    def tags(self, champion_version: str | None) -> dict[str, str]:
        """The figures behind the decision, tagged on the version next to the reason."""
        c = self.comparison
        if c is None or champion_version is None:
            return {}
        return {
            "gate_vs_version": champion_version,
            "gate_difference": repr(c.difference),
            "gate_interval": f"[{c.interval.low!r}, {c.interval.high!r}]",
            "gate_p_value": repr(c.p_value),
            "gate_test": c.test,
        }


def champion_bundle(name: str, version: str) -> ModelBundle:
    """The champion's bundle, as registered (the pyfunc wraps exactly this; the load check proved it)."""
    import mlflow

    return ModelBundle.load(f"{mlflow.artifacts.download_artifacts(f'models:/{name}/{version}')}/artifacts/bundle")


def point_verdict(metric: str, value: float, old: float, mode: str, champ_version: str) -> Verdict:
    """Today's rule without statistics: at least as good as the champion's recorded value (ties to the newer)."""
    if math.isnan(old) or not better(old, value, mode):
        return Verdict(True, f"{metric} {value:.4f} vs champion v{champ_version} {old:.4f} (policy point)")
    return Verdict(False, f"{metric} {value:.4f} is worse than champion v{champ_version}'s {old:.4f} (policy point)")


def statistical_verdict(
    policy: GateSettings, metric: str, test: SplitScores, champion: ModelBundle, champ_version: str, seed: int = 0
) -> Verdict:
    """Compare on the same test rows and apply ``significant`` or ``non_inferior``."""
    name = metric.removeprefix("test_")
    comparison = compare(
        name,
        test.bundle.task,
        test.y,
        Predictions(test.proba, test.bundle.decision_threshold),
        Predictions(champion.predict_proba(test.X), champion.decision_threshold),
        seed=seed,
    )
    return decide(policy, comparison, champ_version)


def decide(policy: GateSettings, c: Comparison, champ_version: str) -> Verdict:
    floor = f", min_delta {policy.min_delta:g}" if policy.min_delta else ""
    if policy.policy == "non_inferior":
        ok = c.interval.low > -policy.min_delta
        verdict = "non-inferior to" if ok else f"possibly worse than (interval below -{policy.min_delta:g})"
    else:
        ok = c.p_value < policy.alpha and c.difference >= policy.min_delta
        verdict = (
            "significantly better than" if ok else f"not significantly better (alpha {policy.alpha:g}{floor}) than"
        )
    return Verdict(ok, f"{verdict} champion v{champ_version}: {c.describe()}", c)


def comparable(champ: Any, split_hash: str, metric: str) -> str | None:
    """Why the champion cannot be compared with a new version (None when it can)."""
    tags = champ.tags or {}
    if tags.get(TAG_SPLIT) != split_hash:
        return (
            f"champion v{champ.version} was tested on split {tags.get(TAG_SPLIT)}, this on {split_hash}: "
            "not comparable; promote by hand with `tunefleet promote --force`"
        )
    if tags.get(TAG_METRIC) != metric:
        return f"champion v{champ.version} was gated on {tags.get(TAG_METRIC)}, not {metric}; promote by hand"
    return None
