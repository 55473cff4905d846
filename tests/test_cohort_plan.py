"""How one ask splits into cohorts (no torch)."""

from __future__ import annotations

import pytest

from tunefleet.cohort import train_cohort
from tunefleet.cohort_plan import cohort_cost, cohort_groups, plan_cohorts
from tunefleet.train_config import TrainConfig


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"torch_threads": 1, "calibrate": True, **kw})


def test_cohort_groups_split_by_shape() -> None:
    configs = [
        _cfg(hidden_widths=(8,)),
        _cfg(hidden_widths=(16,)),
        _cfg(hidden_widths=()),
        _cfg(hidden_widths=(8,), optimizer="sgd"),
        _cfg(hidden_widths=(4,), batch_size=64),
        _cfg(hidden_widths=(8,), torch_threads=2),
        _cfg(hidden_widths=(8, 8)),
    ]
    assert cohort_groups(configs) == [[0, 1, 3, 4], [2], [5], [6]]
    with pytest.raises(ValueError, match="must share"):
        train_cohort(configs[1:3], None)  # type: ignore[arg-type]


def test_plan_cohorts_splits_a_dominant_group_for_idle_slots() -> None:
    """One costly group and one cheap one on 2 slots: the costly group is split, narrow apart from wide."""
    wide = [_cfg(hidden_widths=(128, 128), epochs=40, seed=i, batch_size=16) for i in range(4)]
    narrow = [_cfg(hidden_widths=(8, 8), epochs=40, seed=10 + i, batch_size=16) for i in range(4)]
    logreg = [_cfg(hidden_widths=(), epochs=5, seed=20)]
    configs = [*wide, *narrow, *logreg]
    shape = (455, 30, 1)
    assert plan_cohorts(configs, *shape, slots=1) == cohort_groups(configs)  # one slot: splitting only adds steps
    plan = plan_cohorts(configs, *shape, slots=2)
    assert sorted(i for group in plan for i in group) == list(range(len(configs)))
    assert [0, 1, 2, 3] in plan and [4, 5, 6, 7] in plan and [8] in plan
    costs = [cohort_cost([configs[i] for i in group], *shape) for group in plan]
    assert costs == sorted(costs, reverse=True)  # longest first
