"""The experiment spec: conf/search.yaml + conf/datasets/<name>.yaml + overrides.

Validated once, at load, into frozen objects: unknown keys, wrong types, a low bound
above its high bound, an empty choice, a value no trial can take, or a metric trials never
report each raise a one-line ConfigError naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tunefleet.catalog import DatasetConf, read_dataset_file
from tunefleet.config import (
    StrictModel,
    apply_override,
    deep_merge,
    find_conf_dir,
    load_yaml,
    parse_model,
    set_value,
)
from tunefleet.errors import ConfigError
from tunefleet.metrics import BINARY_METRICS, MULTICLASS_METRICS, metric_names
from tunefleet.search.fit import FitConfig, fitted_space, training_rows
from tunefleet.search.space import SEARCHED_KEYS, SpaceConfig, SpaceSampler, searched_values, threshold_searched
from tunefleet.splits import PreparedData
from tunefleet.tables import loader_for_file, table_stem
from tunefleet.train_config import TrainConfig


class SchedulerConfig(StrictModel):
    """Which trials stop early, and when (:mod:`tunefleet.search.schedule`)."""

    name: Literal["sh", "asha", "median", "none"] = "sh"
    grace_period: int = Field(5, ge=1)
    reduction_factor: int = Field(3, ge=2)


class ResourcesConfig(StrictModel):
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)

    @property
    def torch_threads(self) -> int:
        """A CPU trial runs one torch thread per whole CPU it holds."""
        return max(1, int(self.cpus_per_trial))


class TrainSettings(StrictModel):
    """The ``train:`` section: fixed settings of every trial (hyperparameters are searched)."""

    keep: Literal["best", "last"] = "best"
    calibrate: bool = True
    patience: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class SearchSettings(StrictModel):
    backend: str = "ray"  # a name in search.backend.BACKENDS, checked when the search starts (check_search)
    # K trials trained as one batched model (1: one trial per process, as Tune runs them);
    # "auto" picks K from the model size and the device (tunefleet.search.cohorts.loop.auto_cohort_size)
    cohort_size: int | Literal["auto"] = "auto"
    num_samples: int = Field(24, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    seed: int = 0
    sampler: Literal["tpe", "random"] = "tpe"  # random: the same budget without TPE (to measure what TPE adds)
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    max_failures: int = Field(2, ge=0)
    storage_path: str = "tunefleet-runs"
    report_every_epochs: int = Field(5, ge=1)
    report_every_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _check_cohorts(self) -> SearchSettings:
        if isinstance(self.cohort_size, int) and self.cohort_size < 1:
            raise ValueError("cohort_size must be at least 1, or auto")
        if self.cohort_size not in (1, "auto") and self.scheduler.name == "median":
            raise ValueError("cohorts judge trials at rungs; use scheduler sh, asha or none, or cohort_size 1")
        return self

    @property
    def in_cohorts(self) -> bool:
        """Whether trials train as cohorts (on ``backend``'s resources): unless K is 1.

        ``auto`` leaves the median rule, which cohorts do not implement, to the backend's own loop.
        """
        return not (self.cohort_size == 1 or (self.cohort_size == "auto" and self.scheduler.name == "median"))


class CandidatesConfig(StrictModel):
    """What a search may hand over besides its best trial, chosen on the validation rows (search.champion)."""

    baseline: bool = True  # the logistic-regression baseline competes, under the same protocol
    ensemble: int = Field(25, ge=0)  # rounds of greedy ensemble selection (Caruana et al., 2004); 0: no ensemble


REPORTED_METRICS = frozenset(f"val_{m}" for m in (*BINARY_METRICS, *MULTICLASS_METRICS))


class ExperimentConfig(DatasetConf):
    """A whole search: dataset, split, metric, search settings, fixed train settings, space."""

    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    search: SearchSettings = SearchSettings()
    train: TrainSettings = TrainSettings()
    candidates: CandidatesConfig = CandidatesConfig()
    fit: FitConfig = FitConfig()
    space: SpaceConfig
    smoke: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _searched_not_fixed(cls, raw: Any) -> Any:
        fixed = sorted(set((raw or {}).get("train") or {}) & SEARCHED_KEYS) if isinstance(raw, Mapping) else []
        if fixed:
            raise ValueError(f"train.{fixed[0]} is searched; fix it in space instead (e.g. a one-value choice)")
        return raw

    @model_validator(mode="after")
    def _check_metric(self) -> ExperimentConfig:
        if self.metric not in REPORTED_METRICS:
            known = ", ".join(sorted(REPORTED_METRICS))
            raise ValueError(f"metric {self.metric!r} is never reported by trials; use one of: {known}")
        return self

    @property
    def in_cohorts(self) -> bool:
        """Whether trials train as cohorts (a cross-validated trial's folds as members of one): ``search.cohort_size``."""
        return self.search.in_cohorts

    def fitted(self, data: PreparedData) -> ExperimentConfig:
        """This spec with its space's ``{type: fit}`` specs made concrete for ``data`` (:mod:`tunefleet.search.fit`)."""
        space = fitted_space(self.space, self.fit, training_rows(data))
        return self if space is self.space else self.model_copy(update={"space": space})

    def sampler(self, task: str) -> SpaceSampler:
        """The space's define-by-run sampler for a ``task`` problem (every loop samples through it)."""
        return SpaceSampler(self.space, threshold_searched(task, self.threshold.mode))

    def trial_config(self, params: Mapping[str, Any]) -> TrainConfig:
        """The config a trial with sampled ``params`` trains with (every backend calls this)."""
        return self.train_config(
            {
                **self.train.model_dump(),
                "seed": self.search.seed,
                "torch_threads": self.search.resources.torch_threads,
                **searched_values(params),
            }
        )

    def check_task(self, task: str) -> None:
        """After loading data: the metric must exist for this task (e.g. no ROC AUC for 10 classes)."""
        if self.metric.removeprefix("val_") not in metric_names(task):
            names = ", ".join(f"val_{m}" for m in metric_names(task))
            raise ConfigError(f"metric: {self.metric!r} is not reported for {task} problems; use one of: {names}")


def load_experiment(
    dataset: str | None = None,
    *,
    data_file: str | None = None,
    target: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    values: Mapping[str, Any] | None = None,
    smoke: bool = False,
    conf_dir: str | Path | None = None,
) -> ExperimentConfig:
    """Merge search defaults, the dataset file and overrides; validate the result.

    ``overrides`` are ``key.path=value`` strings whose values are YAML (``--set``);
    ``values`` maps key paths to already-typed values (the CLI's typed flags), set as
    they are. A user file (``data_file`` + ``target``) gets the defaults, or ``dataset`` names a
    conf file to take its settings from.
    """
    conf = find_conf_dir(conf_dir)
    defaults = load_yaml(conf / "search.yaml")
    if data_file is not None:
        if not target:
            raise ConfigError("--data needs --target COLUMN naming the label column")
        name = table_stem(Path(data_file))
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
    for key, value in (values or {}).items():
        merged = set_value(merged, key, value)
    source = (
        f"conf/datasets/{merged.get('name', dataset)}.yaml" if data_file is None or dataset else f"--data {data_file}"
    )
    where = f"{source} (merged with conf/search.yaml and overrides)"
    return parse_model(ExperimentConfig, merged, where)
