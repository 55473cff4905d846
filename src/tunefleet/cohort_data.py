"""A cohort's rows in one index space: every view's training and validation rows, and each step's batches.

A view is what one member trains and validates on: the split's train/validation rows, or
one cross-validation fold (its own rows, scaled by its own scaler, encoded by its own
encoding). Every view's training rows are concatenated into one matrix, and so are their
validation rows, so member k's batch is ``offset[view] + perm_k[s*B_k : (s+1)*B_k]``: one
gather for every member at once, whatever its view. A view whose encoding has fewer
inputs (a text level its training rows lack) is padded with zero columns, whose weights
stay exactly zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from tunefleet.splits import PreparedData

MAX_INDEX = 4_000_000  # row indices built at once (steps x members x widest batch): bounded memory


def _padded(X: np.ndarray, width: int) -> np.ndarray:
    return X if X.shape[1] == width else np.pad(X, ((0, 0), (0, width - X.shape[1])))


class Views:
    """The views' rows on one device: training rows for the steps, validation rows for each epoch's metrics."""

    def __init__(self, views: Sequence[PreparedData], device: torch.device) -> None:
        self.views = list(views)
        self.n_inputs = max(v.n_features for v in views)
        self.n_train = [len(v.y_train) for v in views]
        self.n_val = [len(v.y_val) for v in views]
        self.train_start = np.concatenate([[0], np.cumsum(self.n_train)[:-1]]).astype(np.int64)
        self.val_start = np.concatenate([[0], np.cumsum(self.n_val)[:-1]]).astype(np.int64)
        binary = views[0].task == "binary"
        X_train = np.concatenate([_padded(v.X_train, self.n_inputs) for v in views])
        y_train = np.concatenate([v.y_train for v in views])
        X_val = np.concatenate([_padded(v.X_val, self.n_inputs) for v in views])
        self.X_train = torch.from_numpy(np.ascontiguousarray(X_train)).to(device)
        self.y_train = torch.from_numpy(y_train.astype(np.float32 if binary else np.int64)).to(device)
        self.X_val = torch.from_numpy(np.ascontiguousarray(X_val)).to(device)
        self.device = device

    def val_rows(self, members_views: Sequence[int]) -> torch.Tensor:
        """Each member's validation inputs, ``(K, n_val_max, F)``; a shorter view's last rows repeat its first."""
        width = max(self.n_val[v] for v in members_views)
        index = np.stack([self.val_start[v] + np.arange(width) % self.n_val[v] for v in members_views])
        return self.X_val[torch.from_numpy(index).to(self.device)]


def epoch_batches(
    batch: Sequence[int], sizes: Sequence[int], perms: torch.Tensor
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Every step of one epoch: the members' row indices, loss weights and rows counted.

    Member k's batch at step s is ``perm_k[s*B_k : (s+1)*B_k]``, as ``train_one`` slices it;
    ``perms`` holds each member's global row indices, its first ``sizes[k]`` real. Members are
    in order of their steps per epoch, most first, so the members with a batch at step s
    are the first ``a``; their batches are padded to the largest, padded rows get weight 0
    and real rows ``1/len(batch)``, so each member's loss is its batch mean. Indices are built
    for many steps at once (a dozen kernel calls per block, not per step).
    """
    K, device = len(batch), perms.device
    steps_of = [math.ceil(n / b) for n, b in zip(sizes, batch, strict=True)]
    width = max(batch)
    block = max(1, MAX_INDEX // (K * width))
    b_col, n_col = torch.tensor(batch, device=device).view(1, -1, 1), torch.tensor(sizes, device=device).view(1, -1, 1)
    offset = torch.arange(width, device=device).view(1, 1, -1)
    a = K
    for first in range(0, steps_of[0], block):
        span = torch.arange(first, min(first + block, steps_of[0]), device=device).view(-1, 1, 1)
        pos = span * b_col + offset  # (block, K, width)
        valid = (offset < b_col) & (pos < n_col)
        rows = perms.unsqueeze(0).expand(len(span), -1, -1).gather(2, torch.where(valid, pos, 0))
        counts = valid.sum(dim=2, dtype=torch.float32)
        weights = valid / counts.clamp_min(1).unsqueeze(-1)
        widths = counts.max(dim=1).values.to(torch.int64).tolist()  # one sync per block
        for i, step in enumerate(range(first, first + len(span))):
            while steps_of[a - 1] <= step:  # rows whose batches ran out leave from the end
                a -= 1
            w = widths[i]
            yield rows[i, :a, :w], weights[i, :a, :w], counts[i, :a]
