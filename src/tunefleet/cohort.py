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

Members must share what shapes the computation: layer count, optimizer kind, batch size,
device and threads (:func:`cohort_key`); :func:`cohort_groups` splits a list of configs.
"""

from __future__ import annotations

import copy
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
    """What members of one cohort must share."""
    return (len(cfg.hidden_widths), cfg.optimizer, cfg.batch_size, cfg.device, cfg.torch_threads)


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
    belongs to member ``members[k]``.
    """

    members: list[int]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    lr: torch.Tensor  # (K, 1, 1), and the same shape for the two below
    weight_decay: torch.Tensor
    momentum: torch.Tensor
    state: dict[str, list[torch.Tensor]]  # "m", "v" (Adam) or "buf" (SGD), one per parameter

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (members still training): compaction."""
        idx = torch.tensor(rows, device=self.lr.device)
        pick = lambda t: t.index_select(0, idx)  # noqa: E731
        self.members = [self.members[r] for r in rows]
        self.weights = [pick(w).detach().requires_grad_() for w in self.weights]
        self.biases = [pick(b).detach().requires_grad_() for b in self.biases]
        self.lr, self.weight_decay, self.momentum = pick(self.lr), pick(self.weight_decay), pick(self.momentum)
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

    def column(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device).view(-1, 1, 1)

    zeros = [torch.zeros_like(p) for p in [w for pair in zip(weights, biases, strict=True) for w in pair]]
    state = {"m": zeros, "v": [z.clone() for z in zeros]} if configs[0].optimizer == "adam" else {"buf": zeros}
    return Stack(
        members=list(range(len(configs))),
        weights=weights,
        biases=biases,
        lr=column([c.lr for c in configs]),
        weight_decay=column([c.weight_decay for c in configs]),
        momentum=column([c.momentum for c in configs]),
        state=state,
    )


def forward(stack: Stack, x: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """Logits of every active member: x is (K, B, F); returns (K, B) or (K, B, C)."""
    h = x
    last = len(stack.weights) - 1
    for i, (W, b) in enumerate(zip(stack.weights, stack.biases, strict=True)):
        h = torch.baddbmm(b, h, W)
        if i < last:
            h = torch.relu(h)
    return h.squeeze(-1) if n_outputs == 1 else h


@torch.no_grad()
def optimizer_step(stack: Stack, optimizer: str, step: int) -> None:
    """One update of every member, the same arithmetic as ``torch.optim.Adam`` / ``SGD`` per member."""
    for i, p in enumerate(stack.params):
        assert p.grad is not None
        wd = stack.weight_decay.view(-1, *([1] * (p.dim() - 1)))
        lr = stack.lr.view_as(wd)
        grad = p.grad + wd * p
        if optimizer == "adam":
            m, v = stack.state["m"][i], stack.state["v"][i]
            m.lerp_(grad, 1 - ADAM_BETAS[0])
            v.mul_(ADAM_BETAS[1]).addcmul_(grad, grad, value=1 - ADAM_BETAS[1])
            bias1, bias2 = 1 - ADAM_BETAS[0] ** step, 1 - ADAM_BETAS[1] ** step
            denom = (v.sqrt() / bias2**0.5).add_(ADAM_EPS)
            p.sub_(lr / bias1 * m / denom)
        else:
            buf = stack.state["buf"][i]
            momentum = stack.momentum.view_as(wd)
            buf.copy_(grad if step == 1 else momentum * buf + grad)
            p.sub_(lr * buf)
        p.grad = None


def _member_loss(logits: torch.Tensor, y: torch.Tensor, binary: bool) -> torch.Tensor:
    """Each member's mean batch loss, shape (K,): BCEWithLogits or cross-entropy, as train_one."""
    if binary:
        return functional.binary_cross_entropy_with_logits(logits, y.float(), reduction="none").mean(dim=1)
    k, b, c = logits.shape
    return functional.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none").view(k, b).mean(dim=1)


def _unpadded(stack: Stack, row: int, cfg: TrainConfig, net: MLP) -> MLP:
    """Member ``row``'s current weights, cut back to its own widths, in its own network."""
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, W, b in zip(linears, stack.weights, stack.biases, strict=True):
            lin.weight.copy_(W[row, : lin.in_features, : lin.out_features].T)
            lin.bias.copy_(b[row, 0, : lin.out_features])
    return net


def train_cohort(
    configs: Sequence[TrainConfig], data: PreparedData, report: CohortReport | None = None
) -> list[TrainResult]:
    """Train every config of one cohort together; the results are in the order given."""
    if len({cohort_key(c) for c in configs}) != 1:
        raise ValueError("a cohort's members must share layer count, optimizer, batch size, device and threads")
    started = time.perf_counter()
    first = configs[0]
    if first.torch_threads:
        torch.set_num_threads(first.torch_threads)
    device = resolve_device(first.device)
    binary, n_out = data.task == "binary", n_outputs_for(data.n_classes)
    nets = _member_networks(configs, data)
    stack = _stack(configs, nets, device)
    X_train, y_train, X_val = (
        as_tensor(data.X_train, device),
        as_tensor(data.y_train, device),
        as_tensor(data.X_val, device),
    )
    generators = [torch.Generator().manual_seed(c.seed) for c in configs]
    logs = [EpochLog(c) for c in configs]
    best = [copy.deepcopy(net) for net in nets]  # epoch-0 weights, as train_one keeps them
    n, batch = len(X_train), first.batch_size
    step = 0
    for epoch in range(1, max(c.epochs for c in configs) + 1):
        perms = torch.stack([torch.randperm(n, generator=generators[m]) for m in stack.members]).to(device)
        total = torch.zeros(len(stack.members), device=device)
        for start in range(0, n, batch):
            idx = perms[:, start : start + batch]
            losses = _member_loss(forward(stack, X_train[idx], n_out), y_train[idx], binary)
            losses.sum().backward()
            step += 1
            optimizer_step(stack, first.optimizer, step)
            total += losses.detach() * idx.shape[1]
        with torch.no_grad():
            val_logits = forward(stack, X_val.unsqueeze(0).expand(len(stack.members), -1, -1), n_out).cpu().numpy()
        keep = []
        for row, member in enumerate(stack.members):
            cfg = configs[member]
            row_metrics = epoch_row(data.task, epoch, float(total[row].item()) / n, val_logits[row], data, cfg)
            if logs[member].add(row_metrics):
                best[member] = copy.deepcopy(_unpadded(stack, row, cfg, nets[member]))
            stop = report(member, epoch, row_metrics) if report is not None else False
            if stop or logs[member].done():
                if cfg.keep == "last":
                    _unpadded(stack, row, cfg, nets[member])
            else:
                keep.append(row)
        if not keep:
            break
        if len(keep) < len(stack.members):
            stack.keep(keep)
    return [
        finish(cfg, data, best[k] if cfg.keep == "best" else nets[k], logs[k], started, device)
        for k, cfg in enumerate(configs)
    ]
