"""``train_cohort``: K trials trained in lock-step as one batched model.

For small networks a trial is mostly overhead (kernel launches, optimizer bookkeeping),
so K members share every step: their networks are one :class:`~tunefleet.stack.Stack`
(stacked, zero-padded weights; ``baddbmm``; a hand-written backward; torch's Adam/SGD
arithmetic on each member's row, with its own learning rate, weight decay and
momentum: :mod:`tunefleet.updates`), and
each member's own shuffled batch is gathered with ``X[perm[:, s:s+B]]``.

Each member stays a full trial, equal to ``train_one`` with its config within float
tolerance (``tests/test_cohort.py``):

- the same seeded initialisation (its network is built exactly as ``train_one`` does,
  then copied into the stack) and its own seeded shuffle;
- its own epochs, patience, best epoch and threshold; a member that is done leaves the
  stack (compaction), so it stops costing time;
- the same ending as ``train_one`` (:func:`tunefleet.train.finish`): calibration,
  threshold, bundle.

What members may differ in: widths, optimizer (Adam and SGD), batch size, lr, weight
decay, momentum, epochs, seed, patience, threshold settings. What they must share
(:func:`cohort_key`): the layer count, device and threads; :func:`cohort_groups` splits
a list of configs. Batch sizes may differ because the stack keeps its members sorted by batch
size: the members that still have a batch at step s of an epoch (those with
``s * B < n``) are always its first rows, and each step trains that prefix alone, with
no masks and no wasted rows but the padding of a last, shorter batch.

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
import time
from collections.abc import Callable, Iterator, Sequence

import torch

from tunefleet.model import MLP, n_outputs_for
from tunefleet.splits import PreparedData
from tunefleet.stack import Stack, build_stack, forward, into_net, no_subnormals, snapshot, train_step
from tunefleet.train import EpochLog, TrainResult, as_tensor, epoch_row, finish, resolve_device
from tunefleet.train_config import TrainConfig
from tunefleet.updates import Hyper

# (member index in the configs given, epoch, history row) -> True to stop that member now
CohortReport = Callable[[int, int, dict[str, float]], bool]


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


def cohort_cost(configs: Sequence[TrainConfig], n_rows: int, n_features: int, n_outputs: int) -> float:
    """A cohort's estimated cost in multiply-adds: its longest member's steps, plus every member at the padded size."""
    dims = [n_features, *(max(c.hidden_widths[i] for c in configs) for i in range(len(configs[0].hidden_widths)))]
    padded = sum(a * b for a, b in itertools.pairwise([*dims, n_outputs]))
    steps = max(c.epochs * math.ceil(n_rows / c.batch_size) for c in configs)
    return STEP_OVERHEAD * steps + 3 * padded * n_rows * sum(c.epochs for c in configs)


def plan_cohorts(
    configs: Sequence[TrainConfig], n_rows: int, n_features: int, n_outputs: int, slots: int
) -> list[list[int]]:
    """:func:`cohort_groups`, with costly groups split in two while that shortens the estimated makespan on ``slots``.

    A group is split between narrow and wide members (at the cut that balances the two
    halves' cost), which also shrinks the padding of the narrow half. The plan is in
    descending cost, so the runner starts the longest cohorts first (LPT scheduling).
    """

    def cost(group: list[int]) -> float:
        return cohort_cost([configs[i] for i in group], n_rows, n_features, n_outputs)

    def makespan(groups: list[list[int]]) -> float:
        loads = [0.0] * max(1, slots)
        for c in sorted((cost(g) for g in groups), reverse=True):
            loads[loads.index(min(loads))] += c
        return max(loads)

    plan = cohort_groups(configs)
    for _ in range(4 * max(1, slots)):
        widest = max(plan, key=cost)
        if len(widest) < 2:
            break
        by_size = sorted(widest, key=lambda i: sum(configs[i].hidden_widths))
        halves = min(
            ([by_size[:cut], by_size[cut:]] for cut in range(1, len(by_size))), key=lambda h: max(map(cost, h))
        )
        candidate = [g for g in plan if g is not widest] + [sorted(h) for h in halves]
        if makespan(candidate) >= makespan(plan):
            break
        plan = candidate
    return sorted(plan, key=cost, reverse=True)


def _member_networks(configs: Sequence[TrainConfig], data: PreparedData) -> list[MLP]:
    """Each member's network, initialised exactly as ``train_one`` initialises it."""
    nets = []
    for cfg in configs:
        torch.manual_seed(cfg.seed)
        nets.append(MLP(data.n_features, cfg.hidden_widths, n_outputs_for(data.n_classes)))
    return nets


def stack_members(configs: Sequence[TrainConfig], nets: Sequence[MLP], device: torch.device) -> Stack:
    """The members' networks and optimizer settings as one stack, in the order given."""
    hyper = [Hyper(c.lr, c.weight_decay, c.momentum, c.optimizer == "adam") for c in configs]
    return build_stack(nets, hyper, [c.batch_size for c in configs], device)


def epoch_batches(batch: list[int], perms: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Every step of one epoch: the members' row indices, loss weights and rows counted.

    Member k's batch at step s is ``perm_k[s*B_k : (s+1)*B_k]``, as ``train_one`` slices
    it. The members that have a batch at step s are the first ``a`` (rows are sorted by
    batch size); their batches are padded to the largest, and padded rows get weight 0,
    real rows ``1/len(batch)``, so each member's loss is its batch mean. The whole epoch
    is indexed at once (a dozen kernel calls per epoch, not per step).
    """
    n, device = perms.shape[1], perms.device
    sizes = torch.tensor(batch, device=device).view(1, -1, 1)
    steps, width = math.ceil(n / batch[0]), batch[-1]
    offset = torch.arange(width, device=device).view(1, 1, -1)
    pos = torch.arange(steps, device=device).view(-1, 1, 1) * sizes + offset  # (steps, K, width)
    valid = (offset < sizes) & (pos < n)
    rows = perms.unsqueeze(0).expand(steps, -1, -1).gather(2, torch.where(valid, pos, 0))
    counts = valid.sum(dim=2, dtype=torch.float32)
    weights = valid / counts.clamp_min(1).unsqueeze(-1)
    last = [math.ceil(n / b) for b in batch]  # each row's steps per epoch, descending
    a = len(batch)
    for step in range(steps):
        while last[a - 1] <= step:  # rows whose batches ran out leave from the end
            a -= 1
        w = min(batch[a - 1], n - step * batch[0])
        yield rows[step, :a, :w], weights[step, :a, :w], counts[step, :a]


def train_cohort(
    configs: Sequence[TrainConfig], data: PreparedData, report: CohortReport | None = None
) -> list[TrainResult]:
    """Train every config of one cohort together; the results are in the order given.

    ``report(member, epoch, row)`` sees each member's epochs; returning True stops that
    member there (a pruned trial: its result holds what it trained until then).
    """
    if len({cohort_key(c) for c in configs}) != 1:
        raise ValueError("a cohort's members must share layer count, device and threads; see cohort_groups()")
    started = time.perf_counter()
    first = configs[0]
    if first.torch_threads:
        torch.set_num_threads(first.torch_threads)
    device = resolve_device(first.device)
    nets = _member_networks(configs, data)
    order = sorted(range(len(configs)), key=lambda i: configs[i].batch_size)  # the prefix trick needs this
    stack = stack_members([configs[i] for i in order], [nets[i] for i in order], device)
    stack.members = order
    logs = [EpochLog(c) for c in configs]
    kept = {member: snapshot(stack, row) for row, member in enumerate(stack.members)}  # epoch 0, as train_one
    with no_subnormals():
        _train(stack, configs, data, report, logs, kept, device)
    return [
        finish(cfg, data, into_net(nets[k].to(device), kept[k], stack.shapes), logs[k], started, device)
        for k, cfg in enumerate(configs)
    ]


def _train(
    stack: Stack, configs: Sequence[TrainConfig], data: PreparedData, report: CohortReport | None,
    logs: list[EpochLog], kept: dict[int, torch.Tensor], device: torch.device,
) -> None:  # fmt: skip
    """The epochs: each member's seeded shuffle, the stacked steps, then each member's epoch row and stop."""
    X_train, y_train = as_tensor(data.X_train, device), as_tensor(data.y_train, device)
    y_train = y_train.float() if data.task == "binary" else y_train  # once, not per step
    X_val = as_tensor(data.X_val, device)
    generators = [torch.Generator().manual_seed(c.seed) for c in configs]
    n = len(X_train)
    for epoch in range(1, max(c.epochs for c in configs) + 1):
        perms = torch.stack([torch.randperm(n, generator=generators[m]) for m in stack.members]).to(device)
        total = torch.zeros(len(stack.members), device=device)
        for rows, weights, counts in epoch_batches(stack.batch, perms):
            total[: rows.shape[0]].addcmul_(train_step(stack, X_train[rows], y_train[rows], weights), counts)
        logits = forward(stack, X_val.unsqueeze(0).expand(len(stack.members), -1, -1))[-1]
        val_logits = (logits.squeeze(-1) if logits.shape[-1] == 1 else logits).cpu().numpy()
        keep, train_losses = [], total.tolist()
        for row, member in enumerate(stack.members):
            cfg = configs[member]
            row_metrics = epoch_row(data.task, epoch, train_losses[row] / n, val_logits[row], data, cfg)
            if logs[member].add(row_metrics) or cfg.keep == "last":
                kept[member] = snapshot(stack, row)
            stop = report(member, epoch, row_metrics) if report is not None else False
            if not (stop or logs[member].done()):
                keep.append(row)
        if not keep:
            break
        if len(keep) < len(stack.members):
            stack.keep(keep)
