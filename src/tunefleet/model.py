"""The classifier network: an MLP that returns logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected ReLU network; ``hidden_widths=()`` is logistic regression.

    Returns raw logits (one for binary, K for multi-class): the losses
    (``BCEWithLogitsLoss`` / ``CrossEntropyLoss``) apply the sigmoid/softmax
    themselves, and applying it twice is the bug that capped the MNIST tutorial at 86%.
    """

    def __init__(self, n_features: int, hidden_widths: Sequence[int], n_outputs: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.hidden_widths = tuple(int(w) for w in hidden_widths)
        self.n_outputs = n_outputs
        layers: list[nn.Module] = []
        width_in = n_features
        for width in self.hidden_widths:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        layers.append(nn.Linear(width_in, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out.squeeze(-1) if self.n_outputs == 1 else out
