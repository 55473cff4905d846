"""A cohort's stacked, zero-padded networks and their arithmetic: forward, backward, optimizer step.

Member k's layer l is row k of ``weights[l]`` (``(K, in, out)``) and ``biases[l]``
(``(K, 1, out)``), multiplied with ``baddbmm``. Two things let unlike members share one
stack, both exact rather than approximate:

- **Widths** are padded with zeros to the widest member: a padded unit has zero input
  and output weights, so its gradient, weight decay and Adam/SGD step are zero and it
  stays zero (tested).
- **Optimizers**: Adam and SGD with momentum are one update with per-member columns.
  SGD's momentum buffer is kept as ``(1 - momentum) * buf``, so both are a ``lerp``
  of the gradient into ``m`` and a step ``m * step_size / denom``, with ``denom = 1``
  for SGD members (their bias correction is infinite and their epsilon 1).

Why the backward pass is written out: at these sizes a step costs its number of kernel
calls, not its arithmetic, and autograd's engine cost as much as the rest of the step
(measured: 1.31 -> 0.76 ms per step for 8 members of a 2 x 128 MLP on one core). An MLP
with ReLU and a logit loss has a short, well-known gradient; ``tests/test_cohort.py``
holds every member to ``train_one`` (autograd and ``torch.optim``) within float tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.nn import functional

from tunefleet.model import MLP

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
# Subnormal floats and the square root of 0 take a slow path on x86 CPUs: 20-40x slower
# than normal floats here (measured: 1.2 ms vs 0.07 ms per 160k floats). A stack is full
# of both: every padded unit has v = 0, and the momentum of a dead unit decays into the
# subnormal range. So training runs with subnormals flushed to zero (:func:`no_subnormals`)
# and v is clamped to the smallest normal float before its square root. Neither changes a
# result that float32 can show: sqrt(TINY) / bias correction < 4e-18 vanishes next to
# Adam's epsilon (1e-8), and a subnormal is below 1.2e-38.
TINY = torch.finfo(torch.float32).tiny
Column = torch.Tensor  # (K, 1, 1): one value per member, broadcast over its weights


@dataclass
class Stack:
    """The active members' weights and optimizer state; rows are sorted by batch size (smallest first)."""

    members: list[int]  # row k trains the member with this index in the configs given
    batch: list[int]  # each row's batch size, ascending
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    weight_decay: Column
    lr: Column
    lerp: Column  # weight of the gradient in m: 1 - beta1 (Adam) or 1 - momentum (SGD)
    adam: Column  # bool
    eps: Column  # Adam's epsilon, 1 for SGD members (denom = 1)
    steps: Column  # float64: optimizer steps taken, for Adam's bias correction
    m: list[torch.Tensor]
    v: list[torch.Tensor] | None  # None when no member uses Adam

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (members still training): compaction, so done members cost nothing."""
        idx = torch.tensor(rows, device=self.lr.device)

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t.index_select(0, idx)

        self.members = [self.members[r] for r in rows]
        self.batch = [self.batch[r] for r in rows]
        self.weights, self.biases = [pick(w) for w in self.weights], [pick(b) for b in self.biases]
        self.m = [pick(t) for t in self.m]
        self.v = None if self.v is None else [pick(t) for t in self.v]
        self.lr, self.lerp, self.adam, self.eps = pick(self.lr), pick(self.lerp), pick(self.adam), pick(self.eps)
        self.weight_decay = pick(self.weight_decay)
        self.steps = pick(self.steps)


def build_stack(
    nets: Sequence[MLP], lr: list[float], weight_decay: list[float], momentum: list[float], adam: list[bool],
    batch: list[int], device: torch.device,
) -> Stack:  # fmt: skip
    """Stack the members' initialised networks (in the order given, which must be by batch size)."""
    per_member = [[m for m in net.net if isinstance(m, torch.nn.Linear)] for net in nets]
    if len({len(linears) for linears in per_member}) != 1:
        raise ValueError("a stack's members must have the same number of layers")
    weights, biases = [], []
    for layer in range(len(per_member[0])):
        n_in = max(linears[layer].in_features for linears in per_member)
        n_out = max(linears[layer].out_features for linears in per_member)
        W, b = torch.zeros(len(nets), n_in, n_out), torch.zeros(len(nets), 1, n_out)
        for k, linears in enumerate(per_member):
            w = linears[layer].weight.detach()  # (out, in)
            W[k, : w.shape[1], : w.shape[0]] = w.T
            b[k, 0, : w.shape[0]] = linears[layer].bias.detach()
        weights.append(W.to(device))
        biases.append(b.to(device))
    zeros = [torch.zeros_like(p) for pair in zip(weights, biases, strict=True) for p in pair]
    lerp = [1 - ADAM_BETAS[0] if a else 1 - mom for a, mom in zip(adam, momentum, strict=True)]
    return Stack(
        members=list(range(len(nets))), batch=list(batch), weights=weights, biases=biases,
        weight_decay=column(weight_decay, device), lr=column(lr, device), lerp=column(lerp, device),
        adam=column([float(a) for a in adam], device).bool(),
        eps=column([ADAM_EPS if a else 1.0 for a in adam], device),
        steps=column([0.0] * len(nets), device, torch.float64),
        m=zeros, v=[z.clone() for z in zeros] if any(adam) else None,
    )  # fmt: skip


@contextmanager
def no_subnormals() -> Iterator[None]:
    """Flush subnormal floats to zero on this thread while a cohort trains (see TINY)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def column(values: list[float], device: torch.device, dtype: torch.dtype = torch.float32) -> Column:
    return torch.tensor(values, dtype=dtype, device=device).view(-1, 1, 1)


def forward(stack: Stack, x: torch.Tensor) -> list[torch.Tensor]:
    """Activations of the first ``len(x)`` members: ``[x, hidden..., logits]``; x is (a, B, F), logits (a, B, out)."""
    acts, a, last = [x], len(x), len(stack.weights) - 1
    for layer, (W, b) in enumerate(zip(stack.weights, stack.biases, strict=True)):
        h = torch.baddbmm(b[:a], acts[-1], W[:a])
        acts.append(h.relu_() if layer < last else h)
    return acts


def loss_and_grad(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's weighted batch loss (a,) and its gradient wrt the logits, as autograd computes them.

    Binary (one logit): ``BCEWithLogits``, gradient ``(sigmoid(z) - y) * w``. Multi-class:
    cross-entropy, gradient ``(softmax(z) - onehot(y)) * w``. ``w`` is 1/len(batch) on a
    member's real rows and 0 on padding, so each loss is that member's batch mean.
    """
    a, b, c = logits.shape
    if c == 1:
        z, target = logits.squeeze(-1), y.float()
        rows = functional.binary_cross_entropy_with_logits(z, target, reduction="none")
        grad = ((torch.sigmoid(z) - target) * weights).unsqueeze(-1)
    else:
        rows = functional.cross_entropy(logits.reshape(a * b, c), y.reshape(a * b), reduction="none").view(a, b)
        grad = (torch.softmax(logits, dim=-1) - functional.one_hot(y, c)) * weights.unsqueeze(-1)
    return (rows * weights).sum(dim=1), grad


def backward(stack: Stack, acts: list[torch.Tensor], grad: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of every parameter (in ``stack.params`` order) from the gradient wrt the logits."""
    a, grads = len(grad), [torch.empty(0)] * (2 * len(stack.weights))
    for layer in reversed(range(len(stack.weights))):
        inp = acts[layer]
        grads[2 * layer], grads[2 * layer + 1] = torch.bmm(inp.transpose(1, 2), grad), grad.sum(dim=1, keepdim=True)
        if layer > 0:  # through this layer's weights and the ReLU before it
            grad = torch.ops.aten.threshold_backward(torch.bmm(grad, stack.weights[layer][:a].transpose(1, 2)), inp, 0)
    return grads


def optimizer_step(stack: Stack, grads: list[torch.Tensor]) -> None:
    """One update of the first ``len(grads[0])`` members: per member, ``torch.optim.Adam`` / ``SGD``'s arithmetic.

    In place on views of rows ``:a``, so the other members are not touched. Each line is
    one ``torch._foreach_*`` call over all parameters, as torch's own optimizers do.
    """
    a = len(grads[0])
    cut = (lambda ts: ts) if a == len(stack.members) else (lambda ts: [t[:a] for t in ts])
    steps = stack.steps[:a]
    steps += 1
    params, m = cut(stack.params), cut(stack.m)
    torch._foreach_addcmul_(grads, [stack.weight_decay[:a]] * len(grads), params)  # L2, as torch's weight decay
    torch._foreach_lerp_(m, grads, [stack.lerp[:a]] * len(m))
    adam = stack.adam[:a]
    step_size = (stack.lr[:a] / torch.where(adam, 1 - ADAM_BETAS[0] ** steps, stack.lerp[:a].double())).float()
    if stack.v is None:
        update = torch._foreach_mul(m, [step_size] * len(m))
    else:
        v = cut(stack.v)
        torch._foreach_mul_(v, ADAM_BETAS[1])
        torch._foreach_addcmul_(v, grads, grads, value=1 - ADAM_BETAS[1])
        torch._foreach_clamp_min_(v, TINY)  # see TINY
        bias2_sqrt = torch.where(adam, (1 - ADAM_BETAS[1] ** steps).sqrt(), torch.inf).float()
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [bias2_sqrt] * len(denom))
        torch._foreach_add_(denom, [stack.eps[:a]] * len(denom))
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, [step_size] * len(update))
    torch._foreach_sub_(params, update)


def train_step(stack: Stack, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Forward, backward and update of the first ``len(x)`` members; returns their batch losses."""
    acts = forward(stack, x)
    losses, grad = loss_and_grad(acts[-1], y, weights)
    optimizer_step(stack, backward(stack, acts, grad))
    return losses


def snapshot(stack: Stack, row: int) -> list[torch.Tensor]:
    """A copy of row ``row``'s (padded) weights and biases: a member's best epoch, kept cheaply."""
    return [p[row].clone() for p in stack.params]


def into_net(net: MLP, snap: list[torch.Tensor]) -> MLP:
    """Load a member's snapshot into its own network, cut back to its own widths."""
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, W, b in zip(linears, snap[0::2], snap[1::2], strict=True):
            lin.weight.copy_(W[: lin.in_features, : lin.out_features].T)
            lin.bias.copy_(b[0, : lin.out_features])
    return net
