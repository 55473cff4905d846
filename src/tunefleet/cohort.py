"""``train_cohort``: K trials trained in lock-step as one batched model.

For small networks a trial is mostly overhead (kernel launches, optimizer bookkeeping),
so K members share every step: per-member weights are stacked into ``(K, in, out)``
tensors and multiplied with ``baddbmm``, each member's own shuffled batch is gathered
with ``X[perm[:, s:s+B]]``, and one batched Adam/SGD update applies each member's own
learning rate, weight decay and momentum.

Each member stays a full trial, equal to ``train_one`` with its config within float
tolerance (``tests/test_cohort.py``):

- the same seeded initialisation (its network is built exactly as ``train_one`` does,
  then copied into the stack) and its own seeded shuffle;
- hidden widths padded to the cohort's widest with zeros: a padded unit has zero input
  and output weights, so its gradient, its weight decay and its Adam/SGD step are all
  exactly zero, and it stays zero (tested);
- its own epochs, patience, best epoch and threshold; a member that is done leaves the
  stack (compaction), so it stops costing time;
- the same ending as ``train_one`` (:func:`tunefleet.train.finish`): calibration,
  threshold, bundle.

Members must share their layer count, optimizer kind, device and threads
(:func:`cohort_key`); :func:`cohort_groups` splits a list of configs. Batch sizes may
differ: the stack keeps its members sorted by batch size, so the members that still have
a batch at step s of an epoch (those with ``s * B < n``) are always its first rows, and
each step trains that prefix alone, with no masks and no wasted rows but the padding
of a last, shorter batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional

from tunefleet.model import MLP, n_outputs_for
from tunefleet.splits import PreparedData
from tunefleet.train import EpochLog, TrainConfig, TrainResult, as_tensor, epoch_row, finish, resolve_device

# (member index in the configs given, epoch, history row) -> True to stop that member now
CohortReport = Callable[[int, int, dict[str, float]], bool]
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def cohort_key(cfg: TrainConfig) -> tuple[object, ...]:
    """What members of one cohort must share: layer count (the stack's shape), optimizer, device, threads.

    Batch sizes may differ within a cohort (members are kept sorted by it), so a search
    space with four batch sizes still trains as a few cohorts, not dozens.
    """
    return (len(cfg.hidden_widths), cfg.optimizer, cfg.device, cfg.torch_threads)


def cohort_groups(configs: Sequence[TrainConfig]) -> list[list[int]]:
    """Indices of ``configs`` grouped into cohorts that can train together."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(cohort_key(cfg), []).append(i)
    return list(groups.values())


@dataclass
class Stack:
    """The active members' stacked, zero-padded weights and optimizer state.

    ``weights[l]`` is ``(K, in_l, out_l)`` and ``biases[l]`` ``(K, 1, out_l)``; row k
    belongs to member ``members[k]``, and rows are sorted by batch size (smallest first).
    The per-member columns below are ``(K, 1, 1)``.
    """

    members: list[int]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    lr: torch.Tensor
    weight_decay: torch.Tensor
    momentum: torch.Tensor
    steps: torch.Tensor  # float64: optimizer steps taken, for Adam's bias correction and SGD's first step
    batch: list[int]  # each member's batch size, ascending
    state: dict[str, list[torch.Tensor]]  # "m", "v" (Adam) or "buf" (SGD momentum), one per parameter

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (members still training): compaction."""
        idx = torch.tensor(rows, device=self.lr.device)
        pick = lambda t: t.index_select(0, idx)  # noqa: E731
        self.members = [self.members[r] for r in rows]
        self.batch = [self.batch[r] for r in rows]
        self.weights = [pick(w).detach().requires_grad_() for w in self.weights]
        self.biases = [pick(b).detach().requires_grad_() for b in self.biases]
        self.lr, self.weight_decay, self.momentum = pick(self.lr), pick(self.weight_decay), pick(self.momentum)
        self.steps = pick(self.steps)
        self.state = {k: [pick(t) for t in ts] for k, ts in self.state.items()}


def _member_networks(configs: Sequence[TrainConfig], data: PreparedData) -> list[MLP]:
    """Each member's network, initialised exactly as ``train_one`` initialises it."""
    nets = []
    for cfg in configs:
        torch.manual_seed(cfg.seed)
        nets.append(MLP(data.n_features, cfg.hidden_widths, n_outputs_for(data.n_classes)))
    return nets


def _stack(configs: Sequence[TrainConfig], nets: list[MLP], device: torch.device) -> Stack:
    n_layers = len(configs[0].hidden_widths) + 1
    linears = [[m for m in net.net if isinstance(m, torch.nn.Linear)] for net in nets]
    weights, biases = [], []
    for layer in range(n_layers):
        n_in = max(lin[layer].in_features for lin in linears)
        n_out = max(lin[layer].out_features for lin in linears)
        W = torch.zeros(len(nets), n_in, n_out)
        b = torch.zeros(len(nets), 1, n_out)
        for k, lin in enumerate(linears):
            w = lin[layer].weight.detach()  # (out, in)
            W[k, : w.shape[1], : w.shape[0]] = w.T
            b[k, 0, : w.shape[0]] = lin[layer].bias.detach()
        weights.append(W.to(device).requires_grad_())
        biases.append(b.to(device).requires_grad_())

    def column(values: list[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=device).view(-1, 1, 1)

    zeros = [torch.zeros_like(p) for p in [w for pair in zip(weights, biases, strict=True) for w in pair]]
    return Stack(
        members=list(range(len(configs))),
        weights=weights,
        biases=biases,
        lr=column([c.lr for c in configs]),
        weight_decay=column([c.weight_decay for c in configs]),
        momentum=column([c.momentum for c in configs]),
        steps=column([0.0] * len(configs), torch.float64),
        batch=[c.batch_size for c in configs],
        state={"m": zeros, "v": [z.clone() for z in zeros]} if configs[0].optimizer == "adam" else {"buf": zeros},
    )


def forward(stack: Stack, x: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """Logits of the first ``len(x)`` members (the ones training now): x is (a, B, F); returns (a, B) or (a, B, C)."""
    h, a = x, len(x)
    last = len(stack.weights) - 1
    for i, (W, b) in enumerate(zip(stack.weights, stack.biases, strict=True)):
        h = torch.baddbmm(b[:a], h, W[:a])
        if i < last:
            h = torch.relu(h)
    return h.squeeze(-1) if n_outputs == 1 else h


@torch.no_grad()
def optimizer_step(stack: Stack, optimizer: str, a: int) -> None:
    """One update of the first ``a`` members: per member, the arithmetic of ``torch.optim.Adam`` / ``SGD``.

    In place on views of the stack (rows ``:a``), so the other members' weights and
    optimizer state are not touched at all. Every stacked parameter is 3-D, so the
    per-member columns (``(a, 1, 1)``) broadcast over all of them, and each line below is
    one ``torch._foreach_*`` call over all parameters (as torch's own optimizers do):
    at these sizes the cost of a step is the number of calls, not the arithmetic.
    """
    steps = stack.steps[:a]
    steps += 1
    params = [p[:a] for p in stack.params]
    grads = [p.grad[:a] for p in stack.params if p.grad is not None]
    wd, lr = stack.weight_decay[:a], stack.lr[:a]
    torch._foreach_addcmul_(grads, [wd] * len(params), params)  # weight decay, as torch's non-decoupled L2
    if optimizer == "adam":
        m, v = [t[:a] for t in stack.state["m"]], [t[:a] for t in stack.state["v"]]
        step_size = (lr / (1 - ADAM_BETAS[0] ** steps)).float()
        bias2_sqrt = (1 - ADAM_BETAS[1] ** steps).sqrt().float()
        torch._foreach_lerp_(m, grads, 1 - ADAM_BETAS[0])
        torch._foreach_mul_(v, ADAM_BETAS[1])
        torch._foreach_addcmul_(v, grads, grads, value=1 - ADAM_BETAS[1])
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [bias2_sqrt] * len(denom))
        torch._foreach_add_(denom, ADAM_EPS)
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, [step_size] * len(update))
    else:
        buf = [t[:a] for t in stack.state["buf"]]
        momentum = torch.where(steps == 1, 0.0, stack.momentum[:a].double()).float()
        torch._foreach_mul_(buf, [momentum] * len(buf))
        torch._foreach_add_(buf, grads)  # the first step: buf = grad, as torch.optim.SGD
        update = torch._foreach_mul(buf, [lr] * len(buf))
    torch._foreach_sub_(params, update)
    for p in stack.params:
        p.grad = None


def batch_rows(stack: Stack, perms: torch.Tensor, step: int, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Step ``step`` of the epoch: the row indices and loss weights of the members that train in it.

    Member k's batch is ``perm_k[step*B_k : (step+1)*B_k]``, as ``train_one`` slices it.
    The members with such a batch are the first ``a`` (rows are sorted by batch size);
    their batches are padded to the largest, and padded rows get weight 0, real rows
    ``1/len(batch)``, so each member's loss is its batch mean. None: the epoch is over.
    """
    a = sum(1 for b in stack.batch if step * b < n)
    if a == 0:
        return None
    width = min(stack.batch[a - 1], n - step * stack.batch[0])
    sizes = torch.tensor(stack.batch[:a], device=perms.device).view(-1, 1)
    offset = torch.arange(width, device=perms.device).view(1, -1)
    pos = step * sizes + offset
    valid = (offset < sizes) & (pos < n)
    rows = perms[:a].gather(1, torch.where(valid, pos, 0))
    return rows, valid / valid.sum(dim=1, keepdim=True)


def _member_loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, binary: bool) -> torch.Tensor:
    """Each member's weighted batch loss, shape (K,): BCEWithLogits or cross-entropy, as train_one."""
    if binary:
        rows = functional.binary_cross_entropy_with_logits(logits, y.float(), reduction="none")
    else:
        k, b, c = logits.shape
        rows = functional.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none").view(k, b)
    return (rows * weights).sum(dim=1)


def _snapshot(stack: Stack, row: int) -> list[torch.Tensor]:
    """A copy of row ``row``'s (padded) weights and biases: a member's best epoch, kept cheaply."""
    return [p[row].detach().clone() for p in stack.params]


def _into_net(net: MLP, snapshot: list[torch.Tensor]) -> MLP:
    """Load a member's snapshot into its own network, cut back to its own widths."""
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, W, b in zip(linears, snapshot[0::2], snapshot[1::2], strict=True):
            lin.weight.copy_(W[: lin.in_features, : lin.out_features].T)
            lin.bias.copy_(b[0, : lin.out_features])
    return net


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
    binary, n_out = data.task == "binary", n_outputs_for(data.n_classes)
    nets = _member_networks(configs, data)
    order = sorted(range(len(configs)), key=lambda i: configs[i].batch_size)  # the prefix trick needs this
    stack = _stack([configs[i] for i in order], [nets[i] for i in order], device)
    stack.members = order
    X_train, y_train = as_tensor(data.X_train, device), as_tensor(data.y_train, device)
    X_val = as_tensor(data.X_val, device)
    generators = [torch.Generator().manual_seed(c.seed) for c in configs]
    logs = [EpochLog(c) for c in configs]
    kept = {member: _snapshot(stack, row) for row, member in enumerate(stack.members)}  # epoch 0, as train_one
    n = len(X_train)
    for epoch in range(1, max(c.epochs for c in configs) + 1):
        perms = torch.stack([torch.randperm(n, generator=generators[m]) for m in stack.members]).to(device)
        total = torch.zeros(len(stack.members), device=device)
        step = 0
        while (batch := batch_rows(stack, perms, step, n)) is not None:
            rows, weights = batch
            losses = _member_loss(forward(stack, X_train[rows], n_out), y_train[rows], weights, binary)
            losses.sum().backward()
            optimizer_step(stack, first.optimizer, len(rows))
            total[: len(rows)] += losses.detach() * (weights > 0).sum(dim=1)
            step += 1
        with torch.no_grad():
            val_logits = forward(stack, X_val.unsqueeze(0).expand(len(stack.members), -1, -1), n_out).cpu().numpy()
        keep = []
        for row, member in enumerate(stack.members):
            cfg = configs[member]
            row_metrics = epoch_row(data.task, epoch, float(total[row].item()) / n, val_logits[row], data, cfg)
            if logs[member].add(row_metrics) or cfg.keep == "last":
                kept[member] = _snapshot(stack, row)
            stop = report(member, epoch, row_metrics) if report is not None else False
            if not (stop or logs[member].done()):
                keep.append(row)
        if not keep:
            break
        if len(keep) < len(stack.members):
            stack.keep(keep)
    return [finish(cfg, data, _into_net(nets[k], kept[k]), logs[k], started, device) for k, cfg in enumerate(configs)]
