"""tunefleet core: datasets, splits, model, ``train_one``, metrics, thresholds, bundles.

No Ray and no MLflow here: the search and pipeline packages build on this.
"""

from tunefleet.bundle import ModelBundle
from tunefleet.datasets import Dataset, dataset_names, load_dataset
from tunefleet.errors import ConfigError, DataError, TunefleetError
from tunefleet.evaluation import evaluate
from tunefleet.splits import PreparedData, SplitSpec, prepare_data
from tunefleet.train import TrainConfig, TrainResult, train_one

__all__ = [
    "ConfigError",
    "DataError",
    "Dataset",
    "ModelBundle",
    "PreparedData",
    "SplitSpec",
    "TrainConfig",
    "TrainResult",
    "TunefleetError",
    "dataset_names",
    "evaluate",
    "load_dataset",
    "prepare_data",
    "train_one",
]
__version__ = "0.1.0"
