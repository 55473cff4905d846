"""The dataset catalog: ``conf/datasets/<name>.yaml`` -> loader, split and seed config.

Core keys only (``dataset``, ``split``, ``threshold``, ``seed_config``); the search
layer validates the whole file, search space included, with a model that extends
:class:`DatasetConf`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from tunefleet.config import StrictModel, find_conf_dir, load_yaml, parse_model
from tunefleet.datasets import load_dataset
from tunefleet.errors import ConfigError
from tunefleet.splits import PreparedData, SplitSpec, prepare_data
from tunefleet.thresholds import ThresholdConfig
from tunefleet.train_config import TrainConfig


class DatasetSection(StrictModel):
    """Which registered loader to call, and its keyword options."""

    loader: str
    options: dict[str, Any] = Field(default_factory=dict)


class DatasetConf(StrictModel):
    """The core part of a dataset file."""

    name: str
    dataset: DatasetSection
    split: SplitSpec = SplitSpec()
    threshold: ThresholdConfig = ThresholdConfig()
    seed_config: dict[str, Any] = Field(default_factory=dict)

    def load(self) -> PreparedData:
        """Load and split the dataset (done once per search, on the driver)."""
        return prepare_data(load_dataset(self.dataset.loader, self.dataset.options, self.name), self.split)

    def train_config(self, values: Mapping[str, Any] | None = None, **overrides: Any) -> TrainConfig:
        """The one builder of a ``train_one`` config, validated here and nowhere else.

        ``values`` (a seed config, or a trial's hyperparameters and settings) and
        ``overrides`` go on top of this dataset's threshold settings.
        """
        merged = {**(values or {}), **overrides}
        threshold = {**self.threshold.model_dump(), **merged.get("threshold", {})}
        return parse_model(TrainConfig, {**merged, "threshold": threshold}, f"{self.name}: train config")

    def seed_train_config(self, **overrides: Any) -> TrainConfig:
        """This dataset's seed-tutorial config (``seed_config`` in its file)."""
        return self.train_config(self.seed_config, **overrides)


def load(name: str, *, target: str | None = None, conf_dir: str | Path | None = None) -> PreparedData:
    """A dataset as a search trains on it: loaded, split (stratified) and scaled on its training rows.

    ``name`` is a dataset of the catalog (``conf/datasets/NAME.yaml``, with its split), or, with
    ``target`` naming its label column, a CSV/TSV/Parquet file (the default split): the
    ``data`` that :func:`tunefleet.train.train_one` takes.
    """
    if target is None:
        return dataset_conf(name, conf_dir).load()
    from tunefleet.tables import loader_for_file, table_stem

    source = DatasetSection(loader=loader_for_file(name), options={"path": name, "target": target})
    return DatasetConf(name=table_stem(Path(name)), dataset=source).load()


def catalog_names(conf_dir: str | Path | None = None) -> list[str]:
    """Datasets that have a file in ``conf/datasets/``."""
    return sorted(p.stem for p in (find_conf_dir(conf_dir) / "datasets").glob("*.yaml"))


def read_dataset_file(name: str, conf_dir: str | Path | None = None) -> dict[str, Any]:
    """The raw mapping of ``conf/datasets/<name>.yaml`` with ``name`` filled in."""
    path = find_conf_dir(conf_dir) / "datasets" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(catalog_names(conf_dir))
        raise ConfigError(f"unknown dataset {name!r}; known: {known} (or use --data FILE --target COLUMN)")
    raw = load_yaml(path)
    raw.setdefault("name", name)
    return raw


def dataset_conf(name: str, conf_dir: str | Path | None = None, raw: dict[str, Any] | None = None) -> DatasetConf:
    """Validate the core keys of a dataset file."""
    raw = raw if raw is not None else read_dataset_file(name, conf_dir)
    core = {k: v for k, v in raw.items() if k in DatasetConf.model_fields}
    return parse_model(DatasetConf, core, f"conf/datasets/{name}.yaml")
