"""The search space's part of the spec: each hyperparameter's distribution, and the values
a trial can take, checked when the spec loads (no Optuna here: the CLI checks a spec before
it imports anything heavy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import NonNegativeInt, TypeAdapter, ValidationError, model_validator

from tunefleet.config import StrictModel
from tunefleet.train_config import TrainConfig

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


# A searched parameter's value as the trial's config holds it (the rest keep their names):
# each bound and each choice is validated by TrainConfig itself, so that a space a trial
# would refuse is refused when the spec loads, not by the first trial (or by the driver's
# sizing of the cohorts, with a traceback). n_layers, a count, is the space's own.
AS_TRAIN_VALUE: dict[str, Callable[[Any], dict[str, Any]]] = {
    "width": lambda v: {"hidden_widths": (v,)},
    "threshold": lambda v: {"threshold": {"value": v}},
    "n_layers": lambda v: {"hidden_widths": (1,) * min(TypeAdapter(NonNegativeInt).validate_python(v), 1)},
}


def _refusal(name: str, value: Any) -> str | None:
    """Why a trial's config refuses ``value`` for the searched parameter ``name`` (None: it takes it)."""
    try:
        TrainConfig.model_validate(AS_TRAIN_VALUE.get(name, lambda v: {name: v})(value))
    except ValidationError as err:
        return str(err.errors()[0]["msg"])
    return None


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
        for name in type(self).model_fields:
            spec = getattr(self, name)
            for value in (spec.values or []) if spec.type == "choice" else [spec.low, spec.high]:
                if (why := _refusal(name, value)) is not None:
                    shown = f"{value:g}" if isinstance(value, float) else repr(value)
                    raise ValueError(f"{name}: this space gives it {shown}, which a trial refuses ({why})")
        return self

    def max_epochs(self) -> int:
        spec = self.epochs
        return int(max(spec.values or [0])) if spec.type == "choice" else int(spec.high or 1)
