"""tunefleet: hyperparameter search for PyTorch classifiers, as one installed package.

Three layers, imports pointing one way (pipeline -> search -> core):

- ``tunefleet`` itself is the pure core: datasets, splits, encoding, the model,
  ``train_one``, cohort training, metrics, thresholds, calibration, intervals, the bundle.
  No Ray and no MLflow;
- :mod:`tunefleet.search`: the spec, the space, and trials run on a backend (Ray, or this process);
- :mod:`tunefleet.pipeline`: MLflow tracking, the baseline, the test, the registry gate, the CLI.

In Python: ``tunefleet.load(name)`` and ``tunefleet.train_one(config, data)`` train one config
on a dataset as a search would; ``tunefleet.pipeline.search(name, ...)`` runs ``tunefleet
search`` and returns what its ``--json`` writes.

The names below load on first use (PEP 562), not on ``import tunefleet``: every
submodule import runs this file first, and importing ``tunefleet.errors`` must not
cost torch's import (~3 s here). With eager exports, ``tunefleet --help`` and a
one-line error for a missing data file each took 2.4-4 s; now they take ~0.1 s.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

# A logged model carries the core's modules as an MLflow code path, which MLflow puts first on
# sys.path when it loads the model. A process that loads a model before it imports tunefleet
# gets that copy as ``tunefleet``; this lets ``tunefleet.search`` and ``tunefleet.pipeline`` of
# the installed package still be found under it.
__path__ = pkgutil.extend_path(__path__, __name__)

if TYPE_CHECKING:  # the same names, for type checkers (``X as X``: an explicit re-export)
    from tunefleet.bundle import ModelBundle as ModelBundle
    from tunefleet.catalog import load as load
    from tunefleet.datasets import Dataset as Dataset
    from tunefleet.datasets import dataset_names as dataset_names
    from tunefleet.datasets import load_dataset as load_dataset
    from tunefleet.errors import ConfigError as ConfigError
    from tunefleet.errors import DataError as DataError
    from tunefleet.errors import TunefleetError as TunefleetError
    from tunefleet.evaluation import evaluate as evaluate
    from tunefleet.splits import PreparedData as PreparedData
    from tunefleet.splits import SplitSpec as SplitSpec
    from tunefleet.splits import prepare_data as prepare_data
    from tunefleet.train import TrainResult as TrainResult
    from tunefleet.train import train_one as train_one
    from tunefleet.train_config import TrainConfig as TrainConfig

_HOME = {
    "ConfigError": "errors",
    "DataError": "errors",
    "Dataset": "datasets",
    "ModelBundle": "bundle",
    "PreparedData": "splits",
    "SplitSpec": "splits",
    "TrainConfig": "train_config",
    "TrainResult": "train",
    "TunefleetError": "errors",
    "dataset_names": "datasets",
    "evaluate": "evaluation",
    "load": "catalog",
    "load_dataset": "datasets",
    "prepare_data": "splits",
    "train_one": "train",
}
__all__ = sorted(_HOME)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a public name's submodule when the name is first asked for."""
    if name not in _HOME:
        raise AttributeError(f"module 'tunefleet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tunefleet.{_HOME[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
