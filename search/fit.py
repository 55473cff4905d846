"""A space fitted to the data: batch sizes and epochs that follow the rows a trial trains on.

A batch size of 16 is 20 steps an epoch on 341 rows and 2,000 on 32,000; 60 epochs of batch
128 on 343 rows are 180 steps, too few for SGD at a small learning rate to learn anything
(8 of the 24 configs of the old default search never trained). So ``batch_size`` and
``epochs`` are ``{type: fit}`` in ``conf/search.yaml``, made concrete once the data is loaded
(:meth:`tunefleet.search.experiment.ExperimentConfig.fitted`), by the ``fit:`` rules:

- **batch sizes**: the powers of 2 that give between ``steps_per_epoch`` steps an epoch
  (8 to 64 by default: enough updates an epoch to learn, few enough to batch well);
- **epochs**: ``total_steps`` steps (300 to 3,000) at the middle of those batch sizes,
  within ``epochs`` (5 to 200); the best epoch by validation loss is kept, so an epoch
  budget too long costs time and nothing else.

A spec that names its values (a dataset's conf, ``--smoke``, ``--set``) is used as it is.
"""

from __future__ import annotations

import math

from pydantic import PositiveInt, model_validator

from tunefleet.config import StrictModel
from tunefleet.search.space import ParamSpec, SpaceConfig
from tunefleet.splits import PreparedData

Bounds = tuple[PositiveInt, PositiveInt]


class FitConfig(StrictModel):
    """What ``{type: fit}`` in the space means (the ``fit:`` section)."""

    steps_per_epoch: Bounds = (8, 64)
    total_steps: Bounds = (300, 3000)
    epochs: Bounds = (5, 200)

    @model_validator(mode="after")
    def _ordered(self) -> FitConfig:
        for name in ("steps_per_epoch", "total_steps", "epochs"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: {low} is above {high}")
        return self


def batch_sizes(n_rows: int, rules: FitConfig) -> list[int]:
    """The powers of 2 giving ``rules.steps_per_epoch`` steps an epoch over ``n_rows`` (the nearest one, if none does)."""
    low, high = rules.steps_per_epoch
    powers = [2**k for k in range(0, 15)]
    fitting = [b for b in powers if low <= math.ceil(n_rows / b) <= high]
    return fitting or [max([b for b in powers if b <= max(1, n_rows // low)], default=1)]


def epoch_range(n_rows: int, batch: int, rules: FitConfig) -> tuple[int, int]:
    """Epochs giving ``rules.total_steps`` steps at this batch size, within ``rules.epochs``."""
    steps = math.ceil(n_rows / batch)
    lo_e, hi_e = rules.epochs
    low = min(hi_e, max(lo_e, math.ceil(rules.total_steps[0] / steps)))
    return low, min(hi_e, max(low, math.ceil(rules.total_steps[1] / steps)))


def training_rows(data: PreparedData) -> int:
    """The rows one trial's model trains on: a fold's training rows, or the training split."""
    return len(data.folds[0].y_train) if data.folds else len(data.y_train)


def fitted_space(space: SpaceConfig, rules: FitConfig, n_rows: int) -> SpaceConfig:
    """``space`` with its ``{type: fit}`` specs made concrete for ``n_rows`` training rows."""
    update: dict[str, ParamSpec] = {}
    if space["batch_size"].type == "fit":
        update["batch_size"] = ParamSpec(type="choice", values=list(batch_sizes(n_rows, rules)))
    if space["epochs"].type == "fit":
        batches = sorted(int(v) for v in (update.get("batch_size") or space["batch_size"]).ends())
        low, high = epoch_range(n_rows, batches[len(batches) // 2], rules)
        update["epochs"] = ParamSpec(type="int", low=low, high=high)
    return space.model_copy(update=update) if update else space
