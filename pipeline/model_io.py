"""What goes into the logged MLflow model: code, signature, input example, requirements, metadata.

The tracker logs it (``MlflowTracker.log_model``); this module only builds the pieces.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import tunefleet
from tunefleet.bundle import ModelBundle
from tunefleet.evaluation import SplitScores

PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
TUNEFLEET_SRC = Path(tunefleet.__file__).resolve().parent
PINNED = ("mlflow", "torch", "numpy", "pandas", "pydantic", "pyyaml")
EXAMPLE_ROWS = 5


def pinned_requirements() -> list[str]:
    """Exact versions of what loading the model needs (inferring them costs 3-5 s per model)."""
    out = []
    for pkg in PINNED:
        try:
            out.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            out.append(pkg)
    return out


def input_schema(feature_names: tuple[str, ...]) -> Any:
    """One required, any-typed column per training feature (why: see pipeline/pyfunc_model.py)."""
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    return Schema([ColSpec(AnyType(), name, required=True) for name in feature_names])


@dataclass(frozen=True)
class ModelPackage:
    """A bundle ready to log: its input example and what the bundle predicts for it."""

    bundle: ModelBundle
    example: pd.DataFrame
    expected: pd.DataFrame
    target: str | None

    @classmethod
    def of(cls, test: SplitScores, target: str | None) -> ModelPackage:
        """The first test rows, raw, as the example (the test split is already scored)."""
        example = pd.DataFrame(test.X[:EXAMPLE_ROWS].astype(np.float64), columns=list(test.bundle.feature_names))
        return cls(test.bundle, example, test.bundle.predict_table(example), target)

    def signature(self) -> Any:
        from mlflow.models import ModelSignature
        from mlflow.types.utils import _infer_schema

        with warnings.catch_warnings():  # integer labels: the output has no missing values to worry about
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            outputs = _infer_schema(self.expected)
        return ModelSignature(inputs=input_schema(self.bundle.feature_names), outputs=outputs)

    def metadata(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.bundle.feature_names),
            "class_labels": list(self.bundle.class_labels),
            "target": self.target,
        }
