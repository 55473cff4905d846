"""The search space, declared once: one :class:`Hyperparameter` per searched value.

A declaration says which ``TrainConfig`` field a hyperparameter sets, how its value is
cast, and when a trial samples it at all (momentum for SGD only, one width per hidden
layer, the threshold only when ``threshold.mode: search``). Its distribution is the
``space:`` entry of the conf (a :class:`ParamSpec`). Everything else is derived from
:data:`HYPERPARAMETERS`, in its order:

- the spec's validation (:data:`SpaceConfig`): one field per declaration, and every bound
  and choice checked by ``TrainConfig`` itself, so that a space a trial would refuse is
  refused when the spec loads (not by the first trial, nor by the cohort planner);
- the define-by-run sampler (:class:`SpaceSampler`), which every way of running trials uses;
- a trial's ``train_one`` values (:func:`searched_values`), and the ``train:`` keys that may
  not fix a searched value (:data:`SEARCHED_KEYS`).

Adding a hyperparameter is one line here and a field of ``TrainConfig``. No Optuna import:
the sampler calls whatever trial it is given, and the CLI checks a spec before anything
heavy is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import NonNegativeInt, TypeAdapter, ValidationError, create_model, model_validator

from tunefleet.config import StrictModel
from tunefleet.train_config import TrainConfig

SearchableScalar = float | int | str | bool


class ParamSpec(StrictModel):
    """One hyperparameter's distribution."""

    type: Literal["loguniform", "uniform", "int", "choice", "fit"]  # fit: made concrete from the data (search.fit)
    low: float | None = None
    high: float | None = None
    values: list[SearchableScalar] | None = None

    @model_validator(mode="before")
    @classmethod
    def _named_values_win(cls, raw: Any) -> Any:
        """``{type: fit}`` with values (``--set space.batch_size.values=[32,64]``) is a choice of them, and
        with bounds an int range: a spec that names its values is used as it is (search.fit)."""
        if isinstance(raw, dict) and raw.get("type") == "fit":
            if raw.get("values") is not None:
                return {**raw, "type": "choice"}
            if raw.get("low") is not None or raw.get("high") is not None:
                return {**raw, "type": "int"}
        return raw

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        if self.type == "fit":  # named values or bounds made it a choice or an int before this
            return self
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

    def ends(self) -> list[Any]:
        """The values a trial can take at the edges: every choice, or both bounds (none until fitted)."""
        if self.type == "fit":
            return []
        return list(self.values or []) if self.type == "choice" else [self.low, self.high]

    def largest(self) -> int:
        return int(max(self.values or [0])) if self.type == "choice" else int(self.high or 0)

    def smallest(self) -> int:
        return int(min(self.values or [1])) if self.type == "choice" else int(self.low or 1)

    def count(self) -> int:
        """How many values a whole-number spec allows."""
        return len(self.values or []) if self.type == "choice" else int(self.high or 0) - int(self.low or 0) + 1

    def suggest(self, trial: Any, name: str) -> Any:
        """Sample ``name`` from this distribution on an Optuna trial (or anything with its suggest methods)."""
        if self.type == "fit":
            raise ValueError(f"{name} is fitted to the data first (tunefleet.search.fit.fitted)")
        if self.type == "choice":
            return trial.suggest_categorical(name, list(self.values or []))
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high))
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.type == "loguniform")


def _always(params: Mapping[str, Any], threshold_searched: bool) -> bool:
    return True


@dataclass(frozen=True)
class Hyperparameter:
    """One searched value: the ``TrainConfig`` field it sets, and when a trial samples it."""

    name: str  # its key under space:, and the sampled param's name (name_0, name_1, ... per layer)
    cast: Callable[[Any], Any]
    sets: str | None = None  # the TrainConfig path it sets ("threshold.value"); default: its name
    whole: bool = False  # an int or a choice only (a count, a size)
    fits: bool = False  # may be {type: fit}: made concrete from the data (search.fit)
    per_layer: bool = False  # sampled once per hidden layer, into a list
    counts_layers: bool = False  # the number of hidden layers: sets no field of its own
    when: Callable[[Mapping[str, Any], bool], bool] = _always  # (params so far, threshold searched)

    @property
    def field(self) -> str:
        return (self.sets or self.name).split(".")[0]

    def train_values(self, value: Any) -> dict[str, Any]:
        """What ``value`` makes of a trial's ``TrainConfig`` (the one conversion: sampling and validation)."""
        if self.counts_layers:  # a count of layers: validated as one, widths come per layer
            return {"hidden_widths": (1,) * min(TypeAdapter(NonNegativeInt).validate_python(value), 1)}
        nested: Any = [value] if self.per_layer else value
        for key in reversed((self.sets or self.name).split(".")[1:]):
            nested = {key: nested}
        return {self.field: nested}

    def refusal(self, value: Any) -> str | None:
        """Why a trial's config refuses ``value`` (None: it takes it)."""
        try:
            TrainConfig.model_validate(self.train_values(value))
        except ValidationError as err:
            return str(err.errors()[0]["msg"])
        return None


def _sgd_only(params: Mapping[str, Any], threshold_searched: bool) -> bool:
    return bool(params.get("optimizer") == "sgd")  # SGD's own learning rates, and its momentum (Adam ignores it)


def _adam_only(params: Mapping[str, Any], threshold_searched: bool) -> bool:
    return bool(params.get("optimizer") == "adam")


def _when_searched(params: Mapping[str, Any], threshold_searched: bool) -> bool:
    return threshold_searched


# In sampling order: a condition reads only the params sampled before it.
HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    Hyperparameter("optimizer", str),
    Hyperparameter("lr", float, when=_adam_only),  # Adam's learning rates
    Hyperparameter("sgd_lr", float, sets="lr", when=_sgd_only),  # SGD's: an order of magnitude larger
    Hyperparameter("momentum", float, when=_sgd_only),
    Hyperparameter("batch_size", int, whole=True, fits=True),
    Hyperparameter("n_layers", int, whole=True, counts_layers=True),
    Hyperparameter("width", int, sets="hidden_widths", whole=True, per_layer=True),
    Hyperparameter("epochs", int, whole=True, fits=True),
    Hyperparameter("weight_decay", float),
    Hyperparameter("threshold", float, sets="threshold.value", when=_when_searched),
)
BY_NAME = {hp.name: hp for hp in HYPERPARAMETERS}
# A parameter that sets another's field is ranked as that one (search.importance): sgd_lr as lr.
RANKED_AS = {hp.name: hp.sets for hp in HYPERPARAMETERS if hp.sets in BY_NAME}
LAYERS = next(hp.name for hp in HYPERPARAMETERS if hp.counts_layers)
# What the space decides for a trial: a ``train:`` key among these is an error, not an override.
# (The threshold's mode and objective are the top-level ``threshold:`` section, not ``train:``.)
SEARCHED_KEYS = frozenset(hp.field for hp in HYPERPARAMETERS if hp.sets is None or "." not in hp.sets)
ALWAYS = frozenset(hp.name for hp in HYPERPARAMETERS if hp.when is _always and not hp.per_layer)


class _Space(StrictModel):
    """The searched hyperparameters' distributions: a field per :data:`HYPERPARAMETERS` entry."""

    @model_validator(mode="after")
    def _check_ranges(self) -> _Space:
        for hp in HYPERPARAMETERS:
            spec = self[hp.name]
            if spec.type == "fit" and not hp.fits:
                raise ValueError(f"{hp.name} cannot be fitted to the data; give its distribution")
            if hp.whole and spec.type not in ("int", "choice", "fit"):
                raise ValueError(f"{hp.name} must be 'int' or 'choice', not {spec.type!r}")
            for value in spec.ends():
                if (why := hp.refusal(value)) is not None:
                    shown = f"{value:g}" if isinstance(value, float) else repr(value)
                    raise ValueError(f"{hp.name}: this space gives it {shown}, which a trial refuses ({why})")
        return self

    def __getitem__(self, name: str) -> ParamSpec:
        spec: ParamSpec = getattr(self, name)
        return spec

    def max_epochs(self) -> int:
        return self["epochs"].largest()


if TYPE_CHECKING:
    SpaceConfig = _Space
else:
    SpaceConfig = create_model(
        "SpaceConfig", __base__=_Space, __module__=__name__, **{hp.name: (ParamSpec, ...) for hp in HYPERPARAMETERS}
    )


def hidden_widths(params: Mapping[str, Any]) -> list[int]:
    """``n_layers`` then ``width_0``, ``width_1``, ... -> the hidden-layer widths."""
    width = next(hp for hp in HYPERPARAMETERS if hp.per_layer)
    return [width.cast(params[f"{width.name}_{i}"]) for i in range(int(params.get(LAYERS, 0)))]


def searched_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """Flat sampled params (lr, n_layers, width_0, ..., threshold) -> ``train_one`` values."""
    values: dict[str, Any] = {}
    for hp in HYPERPARAMETERS:
        if hp.per_layer:
            values[hp.field] = hidden_widths(params)
        elif not hp.counts_layers and hp.name in params:
            values.update(hp.train_values(hp.cast(params[hp.name])))
    return values


class SpaceSampler:
    """The define-by-run space: each declaration in order, when its condition holds.

    Picklable (Ray checkpoints the searcher with it), and it imports no Optuna: it calls
    the trial's ``suggest_*`` methods, so warm start can replay earlier params through it.
    """

    def __init__(self, space: SpaceConfig, search_threshold: bool) -> None:
        self.space = space
        self.search_threshold = search_threshold

    def __call__(self, trial: Any) -> None:
        params: dict[str, Any] = {}
        for hp in HYPERPARAMETERS:
            if not hp.when(params, self.search_threshold):
                continue
            spec = self.space[hp.name]
            if hp.per_layer:
                for i in range(int(params[LAYERS])):
                    params[f"{hp.name}_{i}"] = spec.suggest(trial, f"{hp.name}_{i}")
            else:
                params[hp.name] = spec.suggest(trial, hp.name)


def threshold_searched(task: str, mode: str) -> bool:
    """The threshold is a hyperparameter of binary searches with ``threshold.mode: search``."""
    return task == "binary" and mode == "search"
