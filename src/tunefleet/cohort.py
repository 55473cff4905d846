"""``train_members``: K members trained in lock-step as one batched model.

For small networks a trial is mostly overhead (kernel launches, optimizer bookkeeping),
so K members share every step: their networks are one :class:`~tunefleet.stack.Stack`
(stacked, zero-padded weights; ``baddbmm``; a hand-written backward; torch's Adam/SGD
arithmetic on each member's row: :mod:`tunefleet.updates`), and each member's own shuffled
batch is gathered from one index space of rows (:mod:`tunefleet.cohort_data`).

A member is a config trained on a view: the split's train/validation rows, or one
cross-validation fold, so K folds x N configs train as one stack. It may start fresh or
from where an earlier call paused it (:class:`MemberState`: its row, shuffle, curve and
kept snapshot), and trains until its own target epoch (a rung), its last epoch, its
patience running out, or ``report`` stopping it. Members may differ in everything but
the layer count, device and threads (:func:`~tunefleet.cohort_plan.cohort_key`), and in
their starting epochs: a member that survived a rung trains beside members that start.

Each member stays equal to ``train_one`` with its config on its view, within float
tolerance (``tests/test_cohort.py``): the same seeded initialisation, its own seeded
shuffle, its own epochs, patience and best epoch; a resumed member equals one never
paused, bit for bit; and with the search's fixed shapes a member's result does not
depend on its cohort mates, bit for bit on a CPU (:mod:`tunefleet.stack`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from tunefleet.bundle import mlp_logits
from tunefleet.cohort_data import Views, epoch_batches
from tunefleet.cohort_plan import cohort_key
from tunefleet.datasets import n_outputs_for
from tunefleet.model import MLP
from tunefleet.splits import PreparedData
from tunefleet.stack import (
    Row,
    Shapes,
    Stack,
    build_stack,
    forward,
    no_subnormals,
    padded_shapes,
    row_at,
    row_of,
    state_dict_of,
    train_step,
)
from tunefleet.train import EpochLog, TrainResult, epoch_row, resolve_device, single_result
from tunefleet.train_config import TrainConfig
from tunefleet.updates import Hyper

# (member index in the list given, its epoch, its history row) -> True to stop that member now
CohortReport = Callable[[int, int, dict[str, float]], bool]


@dataclass(frozen=True)
class MemberState:
    """Where a paused member stands: what a later call resumes it from, in any cohort of the same shapes."""

    row: Row
    rng: np.ndarray  # its shuffle generator's state
    log: EpochLog  # its curve, best epoch and patience so far
    kept: np.ndarray  # the kept epoch's padded parameters


@dataclass(frozen=True)
class Member:
    config: TrainConfig
    view: int = 0  # which of the views it trains and validates on
    state: MemberState | None = None  # None: a fresh start, initialised as train_one initialises
    until: int | None = None  # the last epoch of this call (a rung); None: its config's epochs

    @property
    def start(self) -> int:
        return len(self.state.log.history) if self.state else 0

    @property
    def target(self) -> int:
        """The epoch this call trains it to: its rung or its last epoch; where it stands, if its patience ran out."""
        if self.state is not None and self.state.log.done():
            return self.start
        return min(self.config.epochs, self.until or self.config.epochs)


@dataclass(frozen=True)
class MemberRun:
    """What a call made of a member: paused (at its target), done (its last epoch or patience), stopped."""

    status: Literal["paused", "done", "stopped"]
    state: MemberState
    state_dict: dict[str, np.ndarray] | None = None  # done or stopped: the kept weights, its own shapes
    val_logits: np.ndarray | None = None  # ... and their logits on its view's validation rows


def member_shapes(members: Sequence[Member], views: Sequence[PreparedData]) -> Shapes:
    """Padded shapes that fit these members (a search passes its own, fixed for all its cohorts)."""
    widths = [max(m.config.hidden_widths[i] for m in members) for i in range(len(members[0].config.hidden_widths))]
    return padded_shapes(max(v.n_features for v in views), widths, n_outputs_for(views[0].n_classes))


def _fresh(member: Member, view: PreparedData, shapes: Shapes) -> MemberState:
    cfg = member.config
    torch.manual_seed(cfg.seed)
    net = MLP(view.n_features, cfg.hidden_widths, n_outputs_for(view.n_classes))
    row = row_of(net, shapes)
    rng = torch.Generator().manual_seed(cfg.seed).get_state().numpy()
    return MemberState(Row(row), rng, EpochLog(cfg), row.copy())  # epoch 0 is kept, as train_one keeps it


def train_members(
    members: Sequence[Member], views: Sequence[PreparedData], report: CohortReport | None = None,
    shapes: Shapes | None = None,
) -> list[MemberRun]:  # fmt: skip
    """Train every member of one cohort until its target; the runs are in the order given."""
    if len({cohort_key(m.config) for m in members}) != 1:
        raise ValueError(
            "a cohort's members must share layer count, device and threads; see cohort_plan.cohort_groups()"
        )
    first = members[0].config
    if first.torch_threads:
        torch.set_num_threads(first.torch_threads)
    device = resolve_device(first.device)
    shapes = shapes or member_shapes(members, views)
    data = Views(views, device)
    states = [m.state or _fresh(m, views[m.view], shapes) for m in members]
    logs = [copy.deepcopy(s.log) for s in states]
    kept = {k: torch.from_numpy(s.kept.copy()).to(device) for k, s in enumerate(states)}
    rngs = [torch.Generator().set_state(torch.from_numpy(s.rng)) for s in states]
    steps = [_steps_per_epoch(m, data) for m in members]
    order = sorted(range(len(members)), key=lambda k: -steps[k])  # the prefix trick needs this
    hyper = [Hyper(members[k].config.lr, members[k].config.weight_decay, members[k].config.momentum,
                   members[k].config.optimizer == "adam") for k in order]  # fmt: skip
    stack = build_stack([states[k].row for k in order], hyper, [members[k].config.batch_size for k in order], shapes,
                        n_outputs_for(views[0].n_classes), device)  # fmt: skip
    stack.members = order
    stack.keep([row for row, k in enumerate(order) if members[k].start < members[k].target])
    stopped: set[int] = set()
    with no_subnormals():
        left = _epochs(stack, members, data, rngs, logs, kept, report, stopped)
    runs = []
    for k, member in enumerate(members):
        state = MemberState(
            left.get(k, states[k].row), rngs[k].get_state().numpy(), logs[k], kept[k].cpu().numpy().copy()
        )
        runs.append(_ended(member, views[member.view], shapes, state, k in stopped))
    return runs


def train_cohort(
    configs: Sequence[TrainConfig], data: PreparedData, report: CohortReport | None = None
) -> list[TrainResult]:
    """Every config, fresh, on ``data``'s own train/validation split, to its end: one result each, as
    ``train_one`` returns it (calibrated and thresholded on its validation rows)."""
    started = time.perf_counter()
    runs = train_members([Member(cfg) for cfg in configs], [data], report)
    seconds, device = (time.perf_counter() - started) / len(configs), str(resolve_device(configs[0].device))
    return [
        single_result(cfg, data, run.state_dict, run.val_logits, run.state.log, seconds, device)  # type: ignore[arg-type]
        for cfg, run in zip(configs, runs, strict=True)
    ]


def _steps_per_epoch(member: Member, data: Views) -> int:
    return -(-data.n_train[member.view] // member.config.batch_size)


def _epochs(
    stack: Stack, members: Sequence[Member], data: Views, rngs: list[torch.Generator], logs: list[EpochLog],
    kept: dict[int, torch.Tensor], report: CohortReport | None, stopped: set[int],
) -> dict[int, Row]:  # fmt: skip
    """The lock-step epochs: each member's seeded shuffle, the stacked steps, then each member's
    epoch row and stop. Returns each member's row as it left the stack (to resume it from)."""
    left: dict[int, Row] = {}
    tick = 0
    while stack.members:
        tick += 1
        views = [members[k].view for k in stack.members]
        sizes = [data.n_train[v] for v in views]
        perms = torch.zeros(len(sizes), max(sizes), dtype=torch.int64)
        for row, k in enumerate(stack.members):
            perms[row, : sizes[row]] = torch.randperm(sizes[row], generator=rngs[k]) + int(data.train_start[views[row]])
        total = torch.zeros(len(sizes), device=data.device)
        for rows, weights, counts in epoch_batches(stack.batch, sizes, perms.to(data.device)):
            total[: rows.shape[0]].addcmul_(train_step(stack, data.X_train[rows], data.y_train[rows], weights), counts)
        logits = forward(stack, data.val_rows(views))[-1][..., : stack.n_outputs]
        val_logits = (logits.squeeze(-1) if stack.n_outputs == 1 else logits).cpu().numpy()
        keep, train_losses = [], total.tolist()
        for row, k in enumerate(stack.members):
            cfg, view, epoch = members[k].config, data.views[views[row]], members[k].start + tick
            n_val = data.n_val[views[row]]
            metrics = epoch_row(view.task, epoch, train_losses[row] / sizes[row], val_logits[row, :n_val], view, cfg)
            if logs[k].add(metrics) or cfg.keep == "last":
                kept[k] = stack.theta[row].clone()
            stop = report(k, epoch, metrics) if report is not None else False
            if stop and epoch < cfg.epochs:  # a last epoch is an end, not a rung
                stopped.add(k)
            elif not logs[k].done() and epoch < members[k].target:
                keep.append(row)
        if len(keep) < len(stack.members):
            left.update({k: row_at(stack, row) for row, k in enumerate(stack.members) if row not in keep})
            stack.keep(keep)
    return left


def _ended(member: Member, view: PreparedData, shapes: Shapes, state: MemberState, stopped: bool) -> MemberRun:
    """A member's run: paused at its target, or done or stopped with its kept weights and their validation logits."""
    if not stopped and not state.log.done():
        return MemberRun("paused", state)
    dims = [view.n_features, *member.config.hidden_widths, n_outputs_for(view.n_classes)]
    state_dict = state_dict_of(state.kept, shapes, dims)
    return MemberRun("stopped" if stopped else "done", state, state_dict, mlp_logits(state_dict, view.X_val))
