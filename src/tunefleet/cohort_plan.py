"""How the configs of one ask split into cohorts; plain Python, no torch.

The search driver plans cohorts and never trains one, so planning lives apart from
:mod:`tunefleet.cohort` (which imports torch, ~2 s of CPU the driver need not pay).

Why these groups: a cohort costs the steps of its longest member, so each split of
one ask into more cohorts adds sequential steps; but a cohort also computes every
member at its widest member's size. Measured on the 32 benchmark configs (one core,
``benchmarks/bench_cohort.py``): by (layer count, optimizer), six cohorts, 7.7 s; by
layer count with Adam and SGD in one update, three cohorts, 5.8 s; one stack for all
hidden layer counts (shallower members passing through frozen identity layers, exact
since ReLU outputs are >= 0), two cohorts, 7.3 s, because a 1-layer member of width
128 then also computes a 128 x 128 identity.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from tunefleet.train_config import TrainConfig


def cohort_key(cfg: TrainConfig) -> tuple[object, ...]:
    """What members of one cohort must share: layer count (the stack's shape), device, threads.

    Optimizers and batch sizes may differ within a cohort, so a search space of three
    layer counts, two optimizers and four batch sizes trains as three cohorts.
    """
    return (len(cfg.hidden_widths), cfg.device, cfg.torch_threads)


def cohort_groups(configs: Sequence[TrainConfig]) -> list[list[int]]:
    """Indices of ``configs`` grouped into cohorts that can train together."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(cohort_key(cfg), []).append(i)
    return list(groups.values())


# What one stacked step costs beyond its arithmetic, in multiply-adds: about 1 ms of
# kernel calls, at the ~4e9 multiply-adds/s that small batched matmuls reach on one core.
STEP_OVERHEAD = 4e6


def cohort_cost(
    configs: Sequence[TrainConfig], n_rows: int, n_features: int, n_outputs: int, members: int = 1, widest: int = 0
) -> float:
    """A cohort's estimated cost in multiply-adds: its longest member's steps, plus every member at the
    padded size (each config ``members`` times: its CV folds; every hidden layer at least ``widest``)."""
    layers = range(len(configs[0].hidden_widths))
    dims = [n_features, *(max(widest, *(c.hidden_widths[i] for c in configs)) for i in layers)]
    padded = sum(a * b for a, b in itertools.pairwise([*dims, n_outputs]))
    steps = max(c.epochs * math.ceil(n_rows / c.batch_size) for c in configs)
    return STEP_OVERHEAD * steps + 3 * padded * n_rows * members * sum(c.epochs for c in configs)


def plan_cohorts(
    configs: Sequence[TrainConfig], n_rows: int, n_features: int, n_outputs: int, slots: int, members: int = 1,
    widest: int = 0, cap: int | None = None,
) -> list[list[int]]:  # fmt: skip
    """:func:`cohort_groups` (at most ``cap`` configs each), with costly groups split in two while that shortens
    the estimated makespan on ``slots``.

    A group is split between narrow and wide members (at the cut that balances the two
    halves' cost), which also shrinks the padding of the narrow half (unless a search pads
    every layer to ``widest``, for members independent of their mates). The plan is in
    descending cost, so the runner starts the longest cohorts first (LPT scheduling).
    """

    def cost(group: list[int]) -> float:
        return cohort_cost([configs[i] for i in group], n_rows, n_features, n_outputs, members, widest)

    def makespan(groups: list[list[int]]) -> float:
        loads = [0.0] * max(1, slots)
        for c in sorted((cost(g) for g in groups), reverse=True):
            loads[loads.index(min(loads))] += c
        return max(loads)

    plan = (
        [group[i : i + cap] for group in cohort_groups(configs) for i in range(0, len(group), cap)]
        if cap
        else cohort_groups(configs)
    )
    for _ in range(4 * max(1, slots)):
        costliest = max(plan, key=cost)
        if len(costliest) < 2:
            break
        by_size = sorted(costliest, key=lambda i: sum(configs[i].hidden_widths))
        halves = min(
            ([by_size[:cut], by_size[cut:]] for cut in range(1, len(by_size))), key=lambda h: max(map(cost, h))
        )
        candidate = [g for g in plan if g is not costliest] + [sorted(h) for h in halves]
        if makespan(candidate) >= makespan(plan):
            break
        plan = candidate
    return sorted(plan, key=cost, reverse=True)
