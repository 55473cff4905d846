"""A cohort's stacked, zero-padded networks and their arithmetic: forward, backward, update.

Member k's parameters are row k of one ``(K, P)`` tensor, ``theta``: each layer's weight
(``in x out``) then its bias, flattened. ``weights[l]`` (``(K, in, out)``) and
``biases[l]`` (``(K, 1, out)``) are views into it, multiplied with ``baddbmm``; the
gradients, the optimizer's moments and a snapshot are ``(K, P)`` rows too, so an update
is a pass over a few flat tensors (:mod:`tunefleet.updates`). **Widths** are padded with
zeros to the widest member: a padded unit has zero input and output weights, so its
gradient, weight decay and Adam/SGD step are zero and it stays zero (tested), which is
exact, not approximate.

Why the backward pass is written out: autograd's engine cost as much as the rest of
the step (measured: 1.31 -> 0.76 ms per step for 8 members of a 2 x 128 MLP on one
core). An MLP with ReLU and a logit loss has a short, well-known gradient;
``tests/test_cohort.py`` holds every member to ``train_one`` (autograd and
``torch.optim``) within float tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.nn import functional

from tunefleet import updates
from tunefleet.model import MLP
from tunefleet.updates import Hyper


@dataclass
class Stack:
    """The active members' parameters and optimizer state, a row each; rows are sorted by batch size."""

    members: list[int]  # row k trains the member with this index in the configs given
    batch: list[int]  # each row's batch size, ascending
    hyper: list[Hyper]  # each row's optimizer settings
    shapes: list[tuple[int, int]]  # each layer's padded (in, out)
    theta: torch.Tensor  # (K, P): weights and biases
    grad: torch.Tensor  # (K, P): the last step's gradients
    m: torch.Tensor  # (K, P): Adam's first moment or SGD's momentum buffer
    v: torch.Tensor | None  # (K, P): Adam's second moment; None when no member uses Adam
    steps: torch.Tensor  # (K,) float32: each member's update count (Adam's bias corrections)
    weights: list[torch.Tensor] = field(init=False)
    biases: list[torch.Tensor] = field(init=False)
    grads: list[torch.Tensor] = field(init=False)  # views of ``grad``, in the order weight, bias, weight, ...
    update: updates.Update = field(init=False)

    def __post_init__(self) -> None:
        self.weights, self.biases = _views(self.theta, self.shapes)
        gw, gb = _views(self.grad, self.shapes)
        self.grads = [g for pair in zip(gw, gb, strict=True) for g in pair]
        self.update = updates.make_update(
            updates.OptState(self.theta, self.grad, self.m, self.v, self.steps, self.hyper)
        )

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (members still training): compaction, so done members cost nothing."""
        idx = torch.tensor(rows, device=self.theta.device)
        self.members = [self.members[r] for r in rows]
        self.batch = [self.batch[r] for r in rows]
        self.hyper = [self.hyper[r] for r in rows]
        for name in ("theta", "grad", "m", "v", "steps"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, idx))
        self.__post_init__()


def _views(flat: torch.Tensor, shapes: list[tuple[int, int]]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each layer's ``(K, in, out)`` weight and ``(K, 1, out)`` bias as views of a ``(K, P)`` tensor."""
    weights, biases, at, k = [], [], 0, len(flat)
    for n_in, n_out in shapes:
        weights.append(flat[:, at : at + n_in * n_out].view(k, n_in, n_out))
        at += n_in * n_out
        biases.append(flat[:, at : at + n_out].view(k, 1, n_out))
        at += n_out
    return weights, biases


def build_stack(nets: Sequence[MLP], hyper: list[Hyper], batch: list[int], device: torch.device) -> Stack:
    """Stack the members' initialised networks (in the order given, which must be by batch size)."""
    per_member = [[m for m in net.net if isinstance(m, torch.nn.Linear)] for net in nets]
    if len({len(linears) for linears in per_member}) != 1:
        raise ValueError("a stack's members must have the same number of layers")
    shapes = [
        (max(ls[layer].in_features for ls in per_member), max(ls[layer].out_features for ls in per_member))
        for layer in range(len(per_member[0]))
    ]
    theta = torch.zeros(len(nets), sum(i * o + o for i, o in shapes))
    weights, biases = _views(theta, shapes)
    for k, linears in enumerate(per_member):
        for W, b, lin in zip(weights, biases, linears, strict=True):
            W[k, : lin.in_features, : lin.out_features] = lin.weight.detach().T
            b[k, 0, : lin.out_features] = lin.bias.detach()
    theta = theta.to(device)
    return Stack(
        members=list(range(len(nets))), batch=list(batch), hyper=list(hyper), shapes=shapes, theta=theta,
        grad=torch.zeros_like(theta), m=torch.zeros_like(theta),
        v=torch.zeros_like(theta) if any(h.adam for h in hyper) else None,
        steps=torch.zeros(len(nets), device=device),
    )  # fmt: skip


@contextmanager
def no_subnormals() -> Iterator[None]:
    """Flush subnormal floats to zero on this thread while a cohort trains (see :data:`tunefleet.updates.TINY`)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def forward(stack: Stack, x: torch.Tensor) -> list[torch.Tensor]:
    """Activations of the first ``len(x)`` members: ``[x, hidden..., logits]``; x is (a, B, F), logits (a, B, out)."""
    acts, a, last = [x], x.shape[0], len(stack.weights) - 1  # shape[0]: len() of a tensor is a slow Python call
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


def backward(stack: Stack, acts: list[torch.Tensor], grad: torch.Tensor) -> torch.Tensor:
    """The first ``len(grad)`` rows of ``stack.grad``, filled from the gradient wrt the logits."""
    a = grad.shape[0]
    for layer in reversed(range(len(stack.weights))):
        inp = acts[layer]
        torch.bmm(inp.transpose(1, 2), grad, out=stack.grads[2 * layer][:a])
        torch.sum(grad, dim=1, keepdim=True, out=stack.grads[2 * layer + 1][:a])
        if layer > 0:  # through this layer's weights and the ReLU before it
            grad = torch.ops.aten.threshold_backward(torch.bmm(grad, stack.weights[layer][:a].transpose(1, 2)), inp, 0)
    return stack.grad[:a]


def train_step(stack: Stack, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Forward, backward and update of the first ``len(x)`` members; returns their batch losses."""
    acts = forward(stack, x)
    losses, grad = loss_and_grad(acts[-1], y, weights)
    backward(stack, acts, grad)
    stack.update(x.shape[0])
    return losses


def snapshot(stack: Stack, row: int) -> torch.Tensor:
    """A copy of row ``row``'s (padded) parameters: a member's best epoch, kept cheaply."""
    return stack.theta[row].clone()


def into_net(net: MLP, snap: torch.Tensor, shapes: list[tuple[int, int]]) -> MLP:
    """Load a member's snapshot into its own network, cut back to its own widths."""
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    weights, biases = _views(snap.unsqueeze(0), shapes)
    with torch.no_grad():
        for lin, W, b in zip(linears, weights, biases, strict=True):
            lin.weight.copy_(W[0, : lin.in_features, : lin.out_features].T)
            lin.bias.copy_(b[0, 0, : lin.out_features])
    return net
