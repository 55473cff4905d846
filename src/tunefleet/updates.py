"""A cohort's optimizer step: ``torch.optim``'s Adam and SGD, per member, on rows of a stack.

Every member has its own learning rate, weight decay, momentum and optimizer, and its
state is torch's own: ``m`` is Adam's first moment or SGD's momentum buffer, ``v``
Adam's second moment, ``steps`` Adam's step count. Two implementations of that one
arithmetic, chosen by device (:func:`make_update`), both held to ``torch.optim`` per
member in ``tests/test_cohort.py``:

- :class:`PerMemberUpdate`, on a CPU: torch's fused Adam/SGD kernels (the ones behind
  ``torch.optim.Adam(fused=True)``), one call per member on its row. On a CPU an
  update costs its passes over memory: the batched update makes ten over all rows,
  a fused kernel one per member. Measured on one core, per step: 4 members of a
  2 x 128 MLP 400 -> 107 us, 11 of a 1 x 128 MLP 300 -> 112 us, 9 logistic
  regressions 160 -> 64 us.
- :class:`BatchedUpdate`, on a GPU: one kernel per elementwise pass over every row, with
  per-member columns, so a step launches the same dozen kernels whatever K is; a
  call per member would launch K times as many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
# Subnormal floats and the square root of 0 take a slow path on x86 CPUs: 20-40x slower
# than normal floats here (measured: 1.2 ms vs 0.07 ms per 160k floats). A stack is full
# of both: every padded unit has v = 0, and the momentum of a dead unit decays into the
# subnormal range. So training runs with subnormals flushed to zero
# (:func:`tunefleet.stack.no_subnormals`) and the batched update clamps v to the smallest
# normal float before its square root. Neither changes a result that float32 can show:
# sqrt(TINY) / bias correction < 4e-18 vanishes next to Adam's epsilon (1e-8), and a
# subnormal is below 1.2e-38. (torch's fused CPU kernels have no such slow path.)
TINY = torch.finfo(torch.float32).tiny


@dataclass(frozen=True)
class Hyper:
    """One member's optimizer settings, as its ``TrainConfig`` gives them."""

    lr: float
    weight_decay: float
    momentum: float
    adam: bool


@dataclass(frozen=True)
class OptState:
    """A stack's parameters and optimizer state, a row per member (all ``(K, P)`` but ``steps``)."""

    theta: torch.Tensor
    grad: torch.Tensor
    m: torch.Tensor  # Adam's first moment or SGD's momentum buffer
    v: torch.Tensor | None  # Adam's second moment; None when no member uses Adam
    steps: torch.Tensor  # (K,) float32: each member's update count
    hyper: list[Hyper]


class Update(Protocol):
    def __call__(self, a: int) -> None:
        """Update the first ``a`` rows of ``theta`` from the first ``a`` rows of ``grad``."""


def make_update(state: OptState) -> Update:
    """The update for the state's device: see the module docstring."""
    if state.theta.device.type == "cpu":
        return PerMemberUpdate(state)
    return BatchedUpdate(state)


class PerMemberUpdate:
    """torch's fused kernels, one call per member on its row views (built once per stack).

    ``torch._fused_adam_`` / ``_fused_sgd_`` are the ops themselves, as ``torch.optim``
    calls them (torch is pinned); their public wrapper, ``torch.optim.adam.adam(fused=True)``,
    costs ~12 us more a call (9 small members: 170 against 64 us a step).
    """

    def __init__(self, state: OptState) -> None:
        vs = state.v.unbind(0) if state.v is not None else [None] * len(state.hyper)
        self.steps = state.steps
        self.rows = list(
            zip(
                state.theta.unbind(0), state.grad.unbind(0), state.m.unbind(0), vs, state.steps.unbind(0), state.hyper,
                strict=True,
            )
        )  # fmt: skip

    def __call__(self, a: int) -> None:
        self.steps[:a].add_(1)  # torch.optim counts the step before the update
        for theta, grad, m, v, step, h in self.rows[:a]:
            if h.adam:
                torch._fused_adam_(
                    [theta], [grad], [m], [v], [], [step], lr=h.lr, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1],
                    weight_decay=h.weight_decay, eps=ADAM_EPS, amsgrad=False, maximize=False,
                )  # fmt: skip
            else:  # m starts at 0, so momentum * m + grad is torch's first step (buffer = grad) too
                torch._fused_sgd_(
                    [theta], [grad], [m] if h.momentum else [], weight_decay=h.weight_decay, momentum=h.momentum,
                    lr=h.lr, dampening=0.0, nesterov=False, maximize=False, is_first_step=False,
                )  # fmt: skip


class BatchedUpdate:
    """Each elementwise pass once over every row, with a column of per-member values.

    Adam and SGD share it: ``m = c1 * m + c2 * grad`` with (beta1, 1 - beta1) or
    (momentum, 1); SGD members get bias corrections of 1 (their betas are 0) and a
    denominator of 1 (their second-moment factor is 0 and their epsilon 1). The bias
    corrections are float64, as ``torch.optim`` computes them, from ``power``
    (beta1^t, beta2^t per member): one multiply a step, where ``beta ** steps`` would
    be four launches on a GPU, whose step costs its launches. ``steps`` still counts,
    so a stack rebuilt after members leave (:meth:`tunefleet.stack.Stack.keep`)
    starts its ``power`` where it was.
    """

    def __init__(self, state: OptState) -> None:
        hyper, device = state.hyper, state.theta.device
        self.state = state
        self.weight_decay = _column([h.weight_decay for h in hyper], device)
        self.c1 = _column([ADAM_BETAS[0] if h.adam else h.momentum for h in hyper], device)
        self.c2 = _column([1 - ADAM_BETAS[0] if h.adam else 1.0 for h in hyper], device)
        self.lr = _column([h.lr for h in hyper], device, torch.float64)
        self.adam = _column([float(h.adam) for h in hyper], device, torch.float64)
        self.eps = _column([ADAM_EPS if h.adam else 1.0 for h in hyper], device)
        self.beta = torch.tensor([ADAM_BETAS if h.adam else (0.0, 0.0) for h in hyper], dtype=torch.float64)
        self.beta = self.beta.to(device)
        self.power = self.beta ** state.steps.double().unsqueeze(1)  # (K, 2): beta1^t, beta2^t

    def __call__(self, a: int) -> None:
        state = self.state
        theta, grad, m = state.theta[:a], state.grad[:a], state.m[:a]
        state.steps[:a].add_(1)
        correction = 1 - self.power[:a].mul_(self.beta[:a])  # (a, 2): 1 - beta^t; (1, 1) for SGD
        grad.addcmul_(theta, self.weight_decay[:a])
        m.mul_(self.c1[:a]).addcmul_(grad, self.c2[:a])
        step_size = (self.lr[:a] / correction[:, :1]).float()
        if state.v is None:
            theta.addcmul_(m, step_size, value=-1)
            return
        v = state.v[:a]
        v.mul_(ADAM_BETAS[1]).addcmul_(grad, grad, value=1 - ADAM_BETAS[1]).clamp_min_(TINY)  # see TINY
        inv_bias2_sqrt = (self.adam[:a] * correction[:, 1:].rsqrt()).float()  # 0 for SGD members
        denom = v.sqrt().mul_(inv_bias2_sqrt).add_(self.eps[:a])
        theta.addcdiv_(m * step_size, denom, value=-1)


def _column(values: list[float], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One value per member, ``(K, 1)``, broadcast over its row."""
    return torch.tensor(values, dtype=dtype, device=device).view(-1, 1)
