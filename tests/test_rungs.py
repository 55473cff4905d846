"""Member-level ASHA: the rung table."""

from __future__ import annotations

from tunefleet.search.rungs import RungTable, rung_epochs


def test_rung_table_follows_ashas_rule() -> None:
    """Ray's ASHA: the cutoff is the (1 - 1/eta) percentile of the values recorded before this one."""
    assert rung_epochs(2, 3, 40) == (2, 6, 18)
    table = RungTable((2, 6), reduction_factor=2, mode="max")
    assert table.judge("a", 2, 0.5) is False  # first at the rung: nothing to compare with
    assert table.judge("b", 2, 0.4) is True  # below the median of [0.5]
    assert table.judge("c", 2, 0.9) is False
    assert table.judge("d", 3, 0.0) is False  # not a rung
    assert table.judge("b", 2, 0.95) is False  # a retried member replaces its value, it does not add one
    assert table.values[2] == {"a": 0.5, "b": 0.95, "c": 0.9}
    low = RungTable((2,), reduction_factor=2, mode="min")
    low.judge("a", 2, 0.5)
    assert low.judge("b", 2, 0.7) is True and low.judge("c", 2, 0.1) is False
