"""The README's "Evaluation you can trust" quotes the gate's rules word for word: each quoted sentence
is made here by the code that writes it on a model version, and must be found in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tunefleet.compare import Comparison
from tunefleet.intervals import Interval
from tunefleet.pipeline.gate import decide, first_verdict
from tunefleet.pipeline.registry import MANY_DECISIONS
from tunefleet.pipeline.settings import GateSettings

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def section() -> str:
    text = README.read_text()
    part = text[text.index("**Evaluation you can trust.**") : text.index("**Configuration.**")]
    return re.sub(r"\s+", " ", part)  # the README wraps its lines; the code writes one


def _c(low: float, high: float, p: float, new: float = 0.995, old: float = 0.99) -> Comparison:
    return Comparison("roc_auc", new, old, Interval(low, high), p, "paired permutation")


def _rule(reason: str) -> str:
    """A reason's rule: everything before its numbers, which the README abridges to "..."."""
    return reason[: reason.index(": test ")] + ": "


def test_the_quoted_rules_are_what_the_gate_writes(section: str) -> None:
    significant, non_inferior = GateSettings(), GateSettings(policy="non_inferior")
    promoted = decide(significant, _c(0.001, 0.009, 0.012), "1").reason
    assert f"`{promoted}`" in section  # quoted whole, numbers and all
    assert _rule(decide(significant, _c(-0.001, 0.01, 0.3), "1").reason) in section
    assert _rule(decide(non_inferior, _c(0.0, 0.0, 1.0, 0.99, 0.99), "1").reason) in section
    assert _rule(decide(non_inferior, _c(-0.03, 0.0, 0.06), "1").reason) in section
    assert _rule(first_verdict(significant, _c(-0.05, -0.01, 0.001)).reason) in section
    assert _rule(first_verdict(significant, _c(-0.05, 0.01, 0.4)).reason) in section
    assert f"`margin: {non_inferior.margin:g}`" in section and f"Past {MANY_DECISIONS}," in section


def test_the_quoted_importance_line_is_what_the_summary_writes(section: str) -> None:
    from tunefleet.search.experiment import load_experiment
    from tunefleet.search.importance import levels

    exp = load_experiment("breast_cancer")
    exp = exp.fitted(exp.load())  # epochs fitted to the rows, so the rungs are known
    first_rung = levels(exp, [])[-1][0]  # the lowest level: the first rung's values
    assert f"(fANOVA, top 3, on 24 trials' {first_rung})" in section
