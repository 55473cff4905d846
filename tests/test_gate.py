"""The gate's rules (``decide``, the first version against the baseline, ``point``) and the exact
sentences they write, on comparisons made by hand and on real predictions."""

from __future__ import annotations

import numpy as np
import pytest

from tunefleet.compare import Comparison, Predictions, compare
from tunefleet.intervals import Interval, paired_lifts, percentile_interval, scorer_for, stratified_indices
from tunefleet.pipeline.gate import decide, first_verdict, point_verdict
from tunefleet.pipeline.settings import GateSettings

SIGNIFICANT, NON_INFERIOR, POINT = (GateSettings(policy=p) for p in ("significant", "non_inferior", "point"))  # type: ignore[arg-type]


def _c(diff_low: float, diff_high: float, p: float, new: float = 0.95, old: float = 0.93) -> Comparison:
    return Comparison("roc_auc", new, old, Interval(diff_low, diff_high), p, "paired permutation")


def test_significant_promotes_only_when_the_test_and_the_interval_both_say_better() -> None:
    win = decide(SIGNIFICANT, _c(0.004, 0.036, 0.01), "3")
    assert win.promote and win.reason == (
        "significantly better than champion v3 (two-sided p < 0.05 and the 95% interval above +0): "
        "test roc_auc 0.9500 vs 0.9300: difference +0.0200, 95% interval [+0.0040, +0.0360], "
        "two-sided p=0.01 (paired permutation)"
    )
    tie = decide(SIGNIFICANT, _c(0.0, 0.0, 1.0, 0.95, 0.95), "3")
    assert not tie.promote and tie.reason.startswith(
        "not significantly better than champion v3 (that needs two-sided p < 0.05 and the 95% interval above +0): "
    )
    edge = decide(SIGNIFICANT, _c(-0.001, 0.041, 0.04), "3")  # p below alpha, the interval holds 0: no
    assert not edge.promote and "95% interval [-0.0010, +0.0410], two-sided p=0.04" in edge.reason
    floor = decide(GateSettings(min_delta=0.01), _c(0.004, 0.036, 0.01), "3")  # better, but not by min_delta
    assert not floor.promote and "the 95% interval above +0.01" in floor.reason


def test_non_inferior_accepts_a_tie_and_refuses_a_loss_beyond_the_margin() -> None:
    assert NON_INFERIOR.margin == 0.01  # the positive default of conf/tracking.yaml
    tie = decide(NON_INFERIOR, _c(0.0, 0.0, 1.0, 0.95, 0.95), "2")
    assert tie.promote and tie.reason == (
        "non-inferior to champion v2 (the 95% interval's low end +0.0000 is above -0.01, the margin): "
        "test roc_auc 0.9500 vs 0.9500: difference +0.0000, 95% interval [+0.0000, +0.0000], "
        "two-sided p=1 (paired permutation)"
    )
    slightly_worse = decide(NON_INFERIOR, _c(-0.008, 0.002, 0.3, 0.947, 0.95), "2")
    assert slightly_worse.promote
    worse = decide(NON_INFERIOR, _c(-0.03, 0.001, 0.06, 0.94, 0.95), "2")
    assert not worse.promote and worse.reason.startswith(
        "possibly worse than champion v2 by more than the margin (the 95% interval's low end -0.0300 is not above -0.01): "
    )


def test_point_and_the_first_version_against_the_baseline() -> None:
    assert point_verdict("test_accuracy", 0.95, 0.94, "max", "1").promote
    assert not point_verdict("test_accuracy", 0.93, 0.94, "max", "1").promote
    worse = first_verdict(SIGNIFICANT, _c(-0.09, -0.02, 0.003, 0.88, 0.93))
    assert not worse.promote and worse.reason.startswith(
        "first model registered under this name, but worse than the logistic-regression baseline "
        "(two-sided p < 0.05 and the 95% interval below 0): test roc_auc 0.8800 vs 0.9300"
    )
    assert worse.tags()["gate_vs_version"] == "baseline" and worse.tags()["gate_level"] == "0.95"
    level = first_verdict(SIGNIFICANT, _c(-0.05, 0.01, 0.2, 0.92, 0.93))
    assert level.promote and level.reason.startswith(
        "first model registered under this name; not worse than the logistic-regression baseline (that needs "
    )
    assert not first_verdict(POINT, _c(-0.05, 0.01, 0.2, 0.92, 0.93)).promote  # point: a lower metric is worse
    assert (
        first_verdict(SIGNIFICANT, None).reason
        == "first model registered under this name (no baseline to compare with)"
    )


def _reproduced() -> tuple[np.ndarray, Predictions, Predictions]:
    """Two models of 113 test rows (breast_cancer's test size), the challenger a little better by ROC AUC."""
    rng = np.random.default_rng(4)
    y = (rng.random(113) < 0.37).astype(np.int64)
    base = rng.normal(size=113) + 1.2 * (2 * y - 1)
    a, b = (1 / (1 + np.exp(-(base + rng.normal(scale=0.5, size=113)))) for _ in range(2))
    return y, Predictions(np.column_stack([1 - a, a]), 0.5), Predictions(np.column_stack([1 - b, b]), 0.5)


def test_the_inconsistent_promotion_is_reproduced_and_refused() -> None:
    """At 23b723d the gate read p from the bootstrap's one-sided tail, (#{diff <= 0} + 1) / 1001, and
    printed the two-sided 95% interval: here p=0.048 < 0.05 promoted, with the interval holding 0
    ("significantly better ... 95% interval [-0.0034, +0.0689], p=0.048"). The permutation test
    gives p=0.14, and the gate refuses, with a sentence whose numbers agree."""
    y, new, old = _reproduced()
    score = scorer_for("binary", 0.5)
    diffs = paired_lifts(score, score, y, new.proba, old.proba, stratified_indices(y, 1000, 0))["roc_auc"]
    old_p = (np.sum(diffs <= 0) + 1) / (len(diffs) + 1)
    old_interval = percentile_interval(diffs, 0.95)
    assert old_p < 0.05 and old_interval.low < 0 < old_interval.high  # the old gate's contradiction
    c = compare("roc_auc", "binary", y, new, old)
    assert (c.interval.low, c.interval.high) == pytest.approx((old_interval.low, old_interval.high))
    assert c.p_value > 0.05
    verdict = decide(SIGNIFICANT, c, "1")
    assert not verdict.promote and verdict.reason.startswith("not significantly better than champion v1")
    assert (
        f"95% interval [{c.interval.low:+.4f}, {c.interval.high:+.4f}], two-sided p={c.p_value:.3g}" in verdict.reason
    )
