"""What goes into the logged MLflow model: code, signature, input example, requirements, metadata.

The tracker logs it (``MlflowTracker.log_model``); this module only builds the pieces.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

import tunefleet
from tunefleet.bundle import ModelBundle
from tunefleet.evaluation import raw_features
from tunefleet.splits import PreparedData

PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
TUNEFLEET_SRC = Path(tunefleet.__file__).resolve().parent
# What the logged model requires: each distribution and the module it installs. No torch: a
# bundle predicts in numpy (tunefleet.bundle), and torch's wheels with their CUDA libraries
# are ~6 GB that an environment built from these (`mlflow models serve --env-manager uv`,
# `mlflow models build-docker`) would download for nothing.
MODULE_OF = {
    "mlflow": "mlflow",
    "numpy": "numpy",
    "pandas": "pandas",
    "pydantic": "pydantic",
    "pyyaml": "yaml",
}
PINNED = tuple(MODULE_OF)
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


@contextmanager
def known_requirements() -> Iterator[None]:
    """Logging or loading one of our models without MLflow's scan of every installed distribution.

    Before it logs or loads a model, MLflow checks the model's requirements against this
    environment, and first maps every installed distribution to its modules: it reads
    each one's RECORD file (1.1 s here, in the driver's critical path). It consults that
    map only for a requirement whose distribution has no metadata, to import the module
    and read its version instead. Our requirements are :data:`PINNED`, whose versions
    :func:`pinned_requirements` read from that metadata, so the check gets their modules
    alone; the check itself still runs. MLflow's map is put back as it was afterwards
    (other models logged in this process infer their requirements from it). Private
    MLflow names (pinned in constraints.txt): if they change, this does nothing.
    """
    from mlflow.utils import requirements_utils as ru

    if getattr(ru, "_MODULES_TO_PACKAGES", False) is not None:  # built already, or renamed
        yield
        return
    ru._MODULES_TO_PACKAGES = {module: [pkg] for pkg, module in MODULE_OF.items()}  # type: ignore[assignment]
    try:
        yield
    finally:
        ru._MODULES_TO_PACKAGES = None
        ru._PACKAGES_TO_MODULES = None


def core_code(workdir: Path) -> Path:
    """The core's modules alone, as the model's code path (a folder named ``tunefleet``).

    What a logged model runs is the bundle and what it imports, all in the core; the
    package's search and pipeline layers (Ray, Optuna, MLflow's writers) stay out of every
    model version's artifacts."""
    target = workdir / "code" / "tunefleet"
    target.mkdir(parents=True, exist_ok=True)
    for module in TUNEFLEET_SRC.glob("*.py"):
        if module.name != "__main__.py":
            shutil.copy2(module, target / module.name)
    return target


def input_schema(feature_names: tuple[str, ...]) -> Any:
    """One required, any-typed column per training feature (why: see pipeline/pyfunc_model.py)."""
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    return Schema([ColSpec(AnyType(), name, required=True) for name in feature_names])


def _as_written(example: pd.DataFrame) -> pd.DataFrame:
    """The example's numbers as a file writes them: 7 significant digits, float32's precision
    (36.8, not 36.79999923706055 from float32, nor 0.24579999 from undoing the scaler), so the
    logged example and the UI show the user's values. What the model predicts for it is
    computed from it, as written."""
    out = example.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = [float(f"{v:.7g}") for v in out[col]]
    return out


@dataclass(frozen=True)
class ModelPackage:
    """A bundle ready to log: its input example and what the bundle predicts for it."""

    bundle: ModelBundle
    example: pd.DataFrame
    expected: pd.DataFrame
    target: str | None

    @classmethod
    def of(cls, bundle: ModelBundle, data: PreparedData, target: str | None) -> ModelPackage:
        """The first training rows, raw, as the example: rows anyone may see (test rows are for the
        gate and the report alone), and what the bundle predicts for them."""
        rows = raw_features(data, "train", EXAMPLE_ROWS)
        if isinstance(rows, pd.DataFrame):  # text columns among the features
            example = rows.reset_index(drop=True)
        else:
            example = pd.DataFrame(rows, columns=list(bundle.feature_names))
        example = _as_written(example)
        return cls(bundle, example, bundle.predict_table(example), target)

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
            "kind": self.bundle.kind,  # trial, ensemble or baseline: what the search handed over
            "networks": len(self.bundle.members),  # a CV trial's fold models, an ensemble's members' too
        }
