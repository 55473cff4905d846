"""A cohort's stacked, zero-padded networks and their arithmetic: forward, backward, update.

Member k's parameters are row k of one ``(K, P)`` tensor, ``theta``: each layer's weight
(``in x out``) then its bias, flattened. ``weights[l]`` (``(K, in, out)``) and
``biases[l]`` (``(K, 1, out)``) are views into it, multiplied with ``baddbmm``; the
gradients, the optimizer's moments and a snapshot are ``(K, P)`` rows too, so an update
is a pass over a few flat tensors (:mod:`tunefleet.updates`).

**Shapes are fixed per search, not per cohort** (:func:`padded_shapes`): every layer is
padded with zeros to the widest the search allows, and a single binary logit to two
columns. A padded unit has zero input and output weights, so its gradient, weight decay
and Adam/SGD step are zero and it stays zero (tested): exact, not approximate. Fixed
shapes make a member's arithmetic the same whoever its cohort mates are, bit for bit on
a CPU: with shapes that followed the cohort's widest member, a dot product's length and a
bias gradient's reduction changed with the mates, and so did the rounding (measured: a
val loss 1.4e-4 apart after 12 epochs, and more for an unstable config). A one-column
output took another kernel when a cohort had one member left. Rows of a shorter batch are
padded too, but that changes no member's sums (also measured).

Why the backward pass is written out: autograd's engine cost as much as the rest of the
step (measured: 1.31 -> 0.76 ms per step for 8 members of a 2 x 128 MLP on one core). An
MLP with ReLU and a logit loss has a short, well-known gradient; ``tests/test_cohort.py``
holds every member to ``train_one`` (autograd and ``torch.optim``) within float tolerance.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional

from tunefleet import updates
from tunefleet.model import MLP
from tunefleet.updates import Hyper

Shapes = list[tuple[int, int]]  # each layer's padded (in, out)


def padded_shapes(n_inputs: int, widths: Sequence[int], n_outputs: int) -> Shapes:
    """Each layer's padded (in, out): the widest input, each hidden layer's widest width, and at
    least two output columns (see the module docstring)."""
    dims = [n_inputs, *widths, max(2, n_outputs)]
    return list(itertools.pairwise(dims))


@dataclass
class Stack:
    """The active members' parameters and optimizer state, a row each, in the order of ``members``."""

    members: list[int]  # row k trains the member with this index in the list given
    batch: list[int]  # each row's batch size
    hyper: list[Hyper]  # each row's optimizer settings
    shapes: Shapes
    n_outputs: int  # the real logits (the rest of the last layer is padding)
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
        idx = torch.tensor(rows, dtype=torch.int64, device=self.theta.device)
        self.members = [self.members[r] for r in rows]
        self.batch = [self.batch[r] for r in rows]
        self.hyper = [self.hyper[r] for r in rows]
        for name in ("theta", "grad", "m", "v", "steps"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, idx))
        self.__post_init__()


def _views(flat: torch.Tensor, shapes: Shapes) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each layer's ``(K, in, out)`` weight and ``(K, 1, out)`` bias as views of a ``(K, P)`` tensor."""
    weights, biases, at, k = [], [], 0, len(flat)
    for n_in, n_out in shapes:
        weights.append(flat[:, at : at + n_in * n_out].view(k, n_in, n_out))
        at += n_in * n_out
        biases.append(flat[:, at : at + n_out].view(k, 1, n_out))
        at += n_out
    return weights, biases


def n_params(shapes: Shapes) -> int:
    return sum(i * o + o for i, o in shapes)


def row_of(net: MLP, shapes: Shapes) -> np.ndarray:
    """A freshly initialised network as one padded row (what a member starts from)."""
    row = torch.zeros(1, n_params(shapes))
    weights, biases = _views(row, shapes)
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    for W, b, lin in zip(weights, biases, linears, strict=True):
        W[0, : lin.in_features, : lin.out_features] = lin.weight.detach().T
        b[0, 0, : lin.out_features] = lin.bias.detach()
    return row[0].numpy()


def state_dict_of(row: np.ndarray, shapes: Shapes, dims: Sequence[int]) -> dict[str, np.ndarray]:
    """A member's own weights, cut from its padded row: ``dims`` = (inputs, hidden widths..., outputs),
    keyed as :class:`tunefleet.model.MLP` keys them (``net.0``, ``net.2``, ...: a ReLU between)."""
    weights, biases = _views(torch.from_numpy(np.ascontiguousarray(row)).view(1, -1), shapes)
    out = {}
    for layer, (W, b) in enumerate(zip(weights, biases, strict=True)):
        n_in, n_out = dims[layer], dims[layer + 1]
        out[f"net.{2 * layer}.weight"] = W[0, :n_in, :n_out].T.numpy().copy()
        out[f"net.{2 * layer}.bias"] = b[0, 0, :n_out].numpy().copy()
    return out


@dataclass(frozen=True)
class Row:
    """One member's parameters and optimizer state, as a stack row holds them (numpy: cheap to ship)."""

    theta: np.ndarray
    m: np.ndarray | None = None
    v: np.ndarray | None = None
    steps: float = 0.0


def build_stack(rows: Sequence[Row], hyper: list[Hyper], batch: list[int], shapes: Shapes, n_outputs: int,
                device: torch.device) -> Stack:  # fmt: skip
    """Stack the members' rows (fresh ones have no moments yet), in the order given."""
    theta = torch.from_numpy(np.stack([r.theta for r in rows])).to(device)
    zeros = np.zeros_like(rows[0].theta)
    m = torch.from_numpy(np.stack([zeros if r.m is None else r.m for r in rows])).to(device)
    adam = any(h.adam for h in hyper)
    v = torch.from_numpy(np.stack([zeros if r.v is None else r.v for r in rows])).to(device) if adam else None
    return Stack(
        members=list(range(len(rows))), batch=list(batch), hyper=list(hyper), shapes=shapes, n_outputs=n_outputs,
        theta=theta, grad=torch.zeros_like(theta), m=m, v=v,
        steps=torch.tensor([r.steps for r in rows], dtype=torch.float32, device=device),
    )  # fmt: skip


def row_at(stack: Stack, row: int) -> Row:
    """A member's row as it stands (to resume it later, in any cohort of the same shapes)."""

    def cpu(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t[row].detach().cpu().numpy().copy()

    return Row(cpu(stack.theta), cpu(stack.m), cpu(stack.v), float(stack.steps[row]))  # type: ignore[arg-type]


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


def loss_and_grad(
    logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, n_outputs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's weighted batch loss (a,) and its gradient wrt the (padded) logits, as autograd computes them.

    Binary (one logit, the first column): ``BCEWithLogits``, gradient ``(sigmoid(z) - y) * w``.
    Multi-class: cross-entropy, gradient ``(softmax(z) - onehot(y)) * w``. ``w`` is
    1/len(batch) on a member's real rows and 0 on padding, so each loss is that member's
    batch mean. Padded logit columns get a gradient of exactly 0.
    """
    a, b, c = logits.shape
    if n_outputs == 1:
        z, target = logits[..., 0], y.float()
        rows = functional.binary_cross_entropy_with_logits(z, target, reduction="none")
        grad = torch.zeros_like(logits)
        grad[..., 0] = (torch.sigmoid(z) - target) * weights
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
    losses, grad = loss_and_grad(acts[-1], y, weights, stack.n_outputs)
    backward(stack, acts, grad)
    stack.update(x.shape[0])
    return losses


def logits_of(stack: Stack, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The real logits, ``(K, n, n_outputs)``, of the given rows (snapshots) on inputs ``x`` (K, n, F)."""
    weights, biases = _views(rows, stack.shapes)
    out, last = x, len(weights) - 1
    for layer, (W, b) in enumerate(zip(weights, biases, strict=True)):
        out = torch.baddbmm(b, out, W)
        out = out.relu_() if layer < last else out
    return out[..., : stack.n_outputs]
