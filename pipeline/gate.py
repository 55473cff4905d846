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
    against: str = ""  # what it was compared with: a champion version ("3") or "baseline"

    def tags(self) -> dict[str, str]:
        """The figures behind the decision, tagged on the version next to the reason."""
        c = self.comparison
        if c is None:
            return {}
        return {
            "gate_vs_version": self.against,
            "gate_difference": repr(c.difference),
            "gate_interval": f"[{c.interval.low!r}, {c.interval.high!r}]",
            "gate_level": f"{c.level:g}",
            "gate_p_value": repr(c.p_value),
            "gate_test": f"{c.test}, two-sided",
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


def paired(policy: GateSettings, metric: str, test: SplitScores, other: SplitScores, seed: int = 0) -> Comparison:
    """The new version against another model (a champion, the baseline) on the same test rows."""
    return compare(
        metric.removeprefix("test_"),
        test.bundle.task,
        test.y,
        Predictions(test.proba, test.bundle.decision_threshold),
        Predictions(other.proba, other.bundle.decision_threshold),
        seed=seed,
        alpha=policy.alpha,
    )


def statistical_verdict(
    policy: GateSettings, metric: str, test: SplitScores, champion: ModelBundle, champ_version: str, seed: int = 0
) -> Verdict:
    """Compare on the same test rows and apply ``significant`` or ``non_inferior``."""
    return decide(policy, paired(policy, metric, test, SplitScores.of_rows(champion, test), seed), champ_version)


def decide(policy: GateSettings, c: Comparison, champ_version: str) -> Verdict:
    """The rule of ``policy`` on one comparison; the reason states the rule, then the numbers.

    - ``significant``: two-sided p < alpha *and* the ``1 - alpha`` interval of the difference
      above ``min_delta`` (for accuracy one implies the other; :mod:`tunefleet.compare`);
    - ``non_inferior``: the interval's low end above ``-margin`` (an identical model passes).
    """
    level, champion, numbers = f"{c.level:.0%}", f"champion v{champ_version}", c.describe()
    if policy.policy == "non_inferior":
        low = f"the {level} interval's low end {c.interval.low:+.4f}"
        if c.interval.low > -policy.margin:
            why = f"non-inferior to {champion} ({low} is above -{policy.margin:g}, the margin)"
            return Verdict(True, f"{why}: {numbers}", c, champ_version)
        why = f"possibly worse than {champion} by more than the margin ({low} is not above -{policy.margin:g})"
        return Verdict(False, f"{why}: {numbers}", c, champ_version)
    rule = f"two-sided p < {c.alpha:g} and the {level} interval above {policy.min_delta:+g}"
    if c.p_value < c.alpha and c.interval.low > policy.min_delta:
        return Verdict(True, f"significantly better than {champion} ({rule}): {numbers}", c, champ_version)
    return Verdict(False, f"not significantly better than {champion} (that needs {rule}): {numbers}", c, champ_version)


def first_verdict(policy: GateSettings, c: Comparison | None) -> Verdict:
    """The first version under a name, against the logistic-regression baseline on the same test rows:
    it becomes ``champion`` unless it is significantly worse (two-sided p < alpha and the whole
    interval below 0; under ``point``, a lower test metric). ``c`` None: no baseline to compare with."""
    first, baseline = "first model registered under this name", "the logistic-regression baseline"
    if c is None:
        return Verdict(True, f"{first} (no baseline to compare with)")
    if policy.policy == "point":
        worse, rule = c.difference < 0, "policy point: a lower test metric"
    else:
        worse = c.p_value < c.alpha and c.interval.high < 0
        rule = f"two-sided p < {c.alpha:g} and the {c.level:.0%} interval below 0"
    if worse:
        return Verdict(False, f"{first}, but worse than {baseline} ({rule}): {c.describe()}", c, "baseline")
    return Verdict(True, f"{first}; not worse than {baseline} (that needs {rule}): {c.describe()}", c, "baseline")


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
