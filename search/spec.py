"""The experiment spec: conf/search.yaml + conf/datasets/<name>.yaml + overrides.

Validated once, at load, into frozen objects: unknown keys, wrong types, a low bound
above its high bound, an empty choice, or a metric trials never report each raise a
one-line ConfigError naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tunefleet.catalog import DatasetConf, read_dataset_file
from tunefleet.config import StrictModel, apply_override, deep_merge, find_conf_dir, load_yaml, parse_model
from tunefleet.datasets import loader_for_file
from tunefleet.errors import ConfigError
from tunefleet.metrics import BINARY_METRICS, MULTICLASS_METRICS, metric_names
from tunefleet.train import TrainConfig

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
        if self.epochs.type == "int" and (self.epochs.low or 0) < 1:
            raise ValueError("epochs.low must be at least 1")
        if self.n_layers.type == "int" and (self.n_layers.low or 0) < 0:
            raise ValueError("n_layers.low must be at least 0")
        if self.threshold.type != "choice" and not ((self.threshold.low or 0) > 0 and (self.threshold.high or 1) < 1):
            raise ValueError("threshold bounds must lie strictly between 0 and 1")
        return self

    def max_epochs(self) -> int:
        spec = self.epochs
        return int(max(spec.values or [0])) if spec.type == "choice" else int(spec.high or 1)


class SchedulerConfig(StrictModel):
    name: Literal["asha", "median", "none"] = "asha"
    grace_period: int = Field(5, ge=1)
    reduction_factor: int = Field(3, ge=2)


class ResourcesConfig(StrictModel):
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)


class SearchSettings(StrictModel):
    backend: Literal["ray", "optuna"] = "ray"
    num_samples: int = Field(24, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    seed: int = 0
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    max_failures: int = Field(2, ge=0)
    storage_path: str = "tunefleet-runs"
    report_every_epochs: int = Field(5, ge=1)
    report_every_s: float = Field(5.0, gt=0)


REPORTED_METRICS = frozenset(f"val_{m}" for m in (*BINARY_METRICS, *MULTICLASS_METRICS))


class ExperimentConfig(DatasetConf):
    """A whole search: dataset, split, metric, search settings, fixed train settings, space."""

    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    search: SearchSettings = SearchSettings()
    train: dict[str, Any] = Field(default_factory=dict)
    space: SpaceConfig
    smoke: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_metric_and_train(self) -> ExperimentConfig:
        if self.metric not in REPORTED_METRICS:
            known = ", ".join(sorted(REPORTED_METRICS))
            raise ValueError(f"metric {self.metric!r} is never reported by trials; use one of: {known}")
        unknown = sorted(set(self.train) - set(TrainConfig.model_fields))
        if unknown:
            raise ValueError(f"train.{unknown[0]} is not a train_one setting")
        searched = {"lr", "batch_size", "hidden_widths", "epochs", "optimizer", "momentum", "weight_decay"}
        fixed_and_searched = sorted(set(self.train) & searched)
        if fixed_and_searched:
            raise ValueError(
                f"train.{fixed_and_searched[0]} is searched; fix it in space instead (e.g. a one-value choice)"
            )
        return self

    def check_task(self, task: str) -> None:
        """After loading data: the metric must exist for this task (e.g. no ROC AUC for 10 classes)."""
        if self.metric.removeprefix("val_") not in metric_names(task):
            names = ", ".join(f"val_{m}" for m in metric_names(task))
            raise ConfigError(f"metric: {self.metric!r} is not reported for {task} problems; use one of: {names}")


def _validate(raw: dict[str, Any], where: str) -> ExperimentConfig:
    exp = parse_model(ExperimentConfig, raw, where)
    # the fixed train settings are checked by the real train_one config model
    parse_model(TrainConfig, exp.train, f"{where}: train")
    return exp


def load_experiment(
    dataset: str | None = None,
    *,
    data_file: str | None = None,
    target: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    smoke: bool = False,
    conf_dir: str | Path | None = None,
) -> ExperimentConfig:
    """Merge search defaults, the dataset file and overrides; validate the result.

    A user file (``data_file`` + ``target``) gets the defaults, or ``dataset`` names a
    conf file to take its settings from.
    """
    conf = find_conf_dir(conf_dir)
    defaults = load_yaml(conf / "search.yaml")
    if data_file is not None:
        if not target:
            raise ConfigError("--data needs --target COLUMN naming the label column")
        name = Path(data_file).stem
        file_raw: dict[str, Any] = {"name": name, "metric": "val_loss", "mode": "min"}
        if dataset:
            file_raw = read_dataset_file(dataset, conf)
        file_raw = deep_merge(
            file_raw,
            {"dataset": {"loader": loader_for_file(data_file), "options": {"path": str(data_file), "target": target}}},
        )
    else:
        if not dataset:
            raise ConfigError("name a dataset (see `tunefleet datasets`) or pass --data FILE --target COLUMN")
        file_raw = read_dataset_file(dataset, conf)
    merged = deep_merge(defaults, file_raw)
    if smoke:
        merged = deep_merge(merged, merged.get("smoke", {}))
    for assignment in overrides:
        merged = apply_override(merged, assignment)
    where = f"conf/datasets/{merged.get('name', dataset)}.yaml (merged with conf/search.yaml and overrides)"
    return _validate(merged, where)
