"""The search space's part of the spec: each hyperparameter's distribution, and the values
a trial can take, checked when the spec loads (no Optuna here: the CLI checks a spec before
it imports anything heavy).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from tunefleet.config import StrictModel

SearchableScalar = float | int | str | bool


class ParamSpec(StrictModel):
    """One hyperparameter's distribution."""

    type: Literal["loguniform", "uniform", "int", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[SearchableScalar] | None = None

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        if self.type == "choice":
            if not self.values:
                raise ValueError("choice needs a non-empty 'values' list")
            if self.low is not None or self.high is not None:
                raise ValueError("choice takes 'values', not low/high")
            return self
        if self.values is not None:
            raise ValueError(f"{self.type} takes low/high, not 'values'")
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs both 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("int bounds must be whole numbers")
        return self


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _whole(v: Any) -> bool:
    return _number(v) and v == int(v)


# What each searched value must be for a trial's TrainConfig to take it, checked on the
# space's bounds and on every choice, so that a bad space is refused before Ray starts and
# not by the first trial, or by the driver's sizing of the cohorts, with a traceback.
DOMAINS: dict[str, tuple[Any, str]] = {
    "lr": (lambda v: _number(v) and v > 0, "numbers above 0"),
    "batch_size": (lambda v: _whole(v) and v >= 1, "whole numbers from 1"),
    "n_layers": (lambda v: _whole(v) and v >= 0, "whole numbers from 0"),
    "width": (lambda v: _whole(v) and v >= 1, "whole numbers from 1"),
    "epochs": (lambda v: _whole(v) and v >= 1, "whole numbers from 1"),
    "optimizer": (lambda v: v in ("sgd", "adam"), "'sgd' or 'adam'"),
    "momentum": (lambda v: _number(v) and 0 <= v < 1, "numbers from 0 up to, not including, 1"),
    "weight_decay": (lambda v: _number(v) and v >= 0, "numbers from 0"),
    "threshold": (lambda v: _number(v) and 0 < v < 1, "numbers strictly between 0 and 1"),
}


class SpaceConfig(StrictModel):
    """The searched hyperparameters (``n_layers`` then one ``width`` per layer)."""

    lr: ParamSpec
    batch_size: ParamSpec
    n_layers: ParamSpec
    width: ParamSpec
    epochs: ParamSpec
    optimizer: ParamSpec
    momentum: ParamSpec
    weight_decay: ParamSpec
    threshold: ParamSpec

    @model_validator(mode="after")
    def _check_ranges(self) -> SpaceConfig:
        for name in ("n_layers", "epochs", "batch_size", "width"):
            spec: ParamSpec = getattr(self, name)
            if spec.type not in ("int", "choice"):
                raise ValueError(f"{name} must be 'int' or 'choice', not {spec.type!r}")
        for name, (accepts, words) in DOMAINS.items():
            spec = getattr(self, name)
            ends = spec.values if spec.type == "choice" else [spec.low, spec.high]
            bad = [v for v in ends or [] if not accepts(v)]
            if bad:
                shown = f"{bad[0]:g}" if _number(bad[0]) else repr(bad[0])
                raise ValueError(f"{name} can only take {words}, and this space gives it {shown}")
        return self

    def max_epochs(self) -> int:
        spec = self.epochs
        return int(max(spec.values or [0])) if spec.type == "choice" else int(spec.high or 1)
