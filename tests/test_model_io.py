"""MLflow's requirement check on our models runs without its scan of every installed distribution."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tunefleet.pipeline.model_io import known_requirements, pinned_requirements


@pytest.fixture
def mlflow_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What MLflow's requirement check warns, with the distribution scan made to fail if it runs."""
    from mlflow.utils import requirements_utils as ru

    def no_scan() -> dict[str, list[str]]:
        raise AssertionError("scanned every installed distribution")

    monkeypatch.setattr(ru.importlib_metadata, "packages_distributions", no_scan)
    monkeypatch.setattr(ru, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(ru, "_PACKAGES_TO_MODULES", None)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    ru._logger.addHandler(handler)
    try:
        yield seen
    finally:
        ru._logger.removeHandler(handler)


@pytest.mark.integration  # MLflow's own requirement check
def test_our_requirements_are_checked_without_the_scan_and_the_map_is_put_back(mlflow_warnings: list[str]) -> None:
    from mlflow.utils import requirements_utils as ru

    with known_requirements():
        ru.warn_dependency_requirement_mismatches(pinned_requirements())
    assert mlflow_warnings == []  # a scan would have raised, and MLflow warns what it catches
    assert ru._MODULES_TO_PACKAGES is None  # MLflow builds its full map when something else needs it


@pytest.mark.integration  # MLflow's own requirement check
def test_the_check_still_reports_a_mismatch(mlflow_warnings: list[str]) -> None:
    from mlflow.utils import requirements_utils as ru

    with known_requirements():
        ru.warn_dependency_requirement_mismatches(["numpy==0.0.1", "pyyaml==0.0.1"])
    assert len(mlflow_warnings) == 1
    assert "numpy (current: " in mlflow_warnings[0] and "pyyaml (current: " in mlflow_warnings[0]


@pytest.mark.integration  # MLflow's own requirement check
def test_a_map_mlflow_built_already_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.utils import requirements_utils as ru

    built = {"yaml": ["pyyaml"], "sklearn": ["scikit-learn"]}
    monkeypatch.setattr(ru, "_MODULES_TO_PACKAGES", built)
    with known_requirements():
        assert ru._MODULES_TO_PACKAGES is built
    assert ru._MODULES_TO_PACKAGES is built


def test_the_logged_example_holds_the_file_s_numbers_and_predicts_the_same(breast_cancer_data) -> None:
    """The raw training rows come back through float32 and the scaler (13.710000038146973, 0.24579999);
    the example shows the file's 13.71 and 0.2458, and what the model predicts for it is the expected.
    They are training rows: the test rows are for the gate and the report alone."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    from tunefleet import train_one
    from tunefleet.evaluation import raw_features
    from tunefleet.pipeline.model_io import ModelPackage
    from tunefleet.train_config import TrainConfig

    bundle = train_one(TrainConfig(epochs=1, seed=0), breast_cancer_data).bundle
    package = ModelPackage.of(bundle, breast_cancer_data, None)
    values = package.example.to_numpy()
    file_values = set(load_breast_cancer().data.ravel().tolist())
    assert all(v in file_values for v in values.ravel())  # as the file wrote them, not float32's expansion
    assert package.bundle.predict_table(package.example).equals(package.expected)
    raw = raw_features(breast_cancer_data, "train")[:5]
    assert np.allclose(bundle.as_matrix(package.example), raw, rtol=1e-6)  # the same rows, to float32's precision
    test = raw_features(breast_cancer_data, "test")
    assert not any(np.allclose(row, test_row) for row in raw for test_row in test)  # no test row among them
