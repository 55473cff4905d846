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
(:func:`~tunefleet.cohort_plan.cohort_key`): the layer count, device and threads;
:func:`~tunefleet.cohort_plan.cohort_groups` splits a list of configs. Batch sizes may differ because the stack keeps its members sorted by batch
size: the members that still have a batch at step s of an epoch (those with
``s * B < n``) are always its first rows, and each step trains that prefix alone, with
no masks and no wasted rows but the padding of a last, shorter batch.

How one ask splits into cohorts (which members train together, and why) is
:mod:`tunefleet.cohort_plan`, which imports no torch: the search driver plans cohorts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence

import torch

from tunefleet.cohort_plan import cohort_key
from tunefleet.datasets import n_outputs_for
from tunefleet.model import MLP
from tunefleet.splits import PreparedData
from tunefleet.stack import Stack, build_stack, forward, into_net, no_subnormals, snapshot, train_step
from tunefleet.train import EpochLog, TrainResult, as_tensor, epoch_row, finish, resolve_device
from tunefleet.train_config import TrainConfig
from tunefleet.updates import Hyper

# (member index in the configs given, epoch, history row) -> True to stop that member now
CohortReport = Callable[[int, int, dict[str, float]], bool]


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
        raise ValueError(
            "a cohort's members must share layer count, device and threads; see tunefleet.cohort_plan.cohort_groups()"
        )
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
