"""The hyperparameters and settings of one trial, as a typed config.

Kept apart from :mod:`tunefleet.train` so that validating a search spec (``tunefleet.search.experiment``,
the dataset catalog) does not import torch: a bad flag or an unknown dataset then fails
in well under a second, not after torch's ~3 s import.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from tunefleet.config import StrictModel
from tunefleet.thresholds import ThresholdConfig


class TrainConfig(StrictModel):
    """Hyperparameters and settings of one training run (one trial)."""

    lr: float = Field(1e-2, gt=0)
    batch_size: int = Field(32, ge=1)
    hidden_widths: tuple[PositiveInt, ...] = ()  # a layer of 0 units would pass only its bias on
    epochs: int = Field(20, ge=1)
    optimizer: Literal["sgd", "adam"] = "adam"
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 0
    threshold: ThresholdConfig = ThresholdConfig()
    keep: Literal["best", "last"] = "best"
    patience: int | None = Field(None, ge=1)
    calibrate: bool = True
    torch_threads: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
