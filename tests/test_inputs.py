"""What a bundle accepts as prediction input, and the one-line errors for what it cannot use."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from tunefleet.errors import DataError
from tunefleet.inputs import feature_matrix

FEATURES = ("age", "visits", "smoker", "bmi")
EXPECTED = np.array([[71, 1, 0, 26.5], [58, 0, 1, 23.75]], dtype=np.float32)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "outcome": ["sick", "healthy"],  # the target, still in the file
            "bmi": [26.5, 23.75],
            "smoker": [False, True],
            "patient_id": [1000, 1001],
            "visits": pd.array([1, 0], dtype="Int64"),
            "age": np.array([71, 58], dtype=np.int64),
        }
    )


@pytest.mark.parametrize(
    "make",
    [
        _frame,  # any order, int/bool/float/nullable Int64, extra columns
        lambda: _frame().astype({"age": "int32", "smoker": "boolean", "bmi": "float32"}),
        lambda: _frame().astype(object),  # what MLflow's Any-typed columns hand over
        lambda: _frame().to_dict("records"),  # a list of row dicts
        lambda: {k: list(v) for k, v in _frame().to_dict("list").items()},  # a dict of columns
        lambda: EXPECTED.astype(np.float64),  # an array in training order
        lambda: pd.DataFrame(EXPECTED),  # an array wrapped without names
    ],
)
def test_inputs_people_pass_become_the_training_matrix(make) -> None:
    got = feature_matrix(make(), FEATURES)
    assert got.dtype == np.float32 and np.array_equal(got, EXPECTED)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["age", "bmi"]), "missing 2 feature column(s): 'age', 'bmi'"),
        (lambda f: f.assign(bmi=["26.5", "heavy"]), "non-numeric values in feature column(s) 'bmi' (e.g. 'heavy')"),
        (
            lambda f: f.assign(visits=pd.array([1, None], dtype="Int64")),
            "missing or infinite values (or beyond float32's range, 3.4e38) in column(s) 'visits'",
        ),
        (
            lambda f: f.assign(bmi=[np.nan, 1.0]),
            "missing or infinite values (or beyond float32's range, 3.4e38) in column(s) 'bmi'",
        ),
        # it predicted an empty probability for that row, with two RuntimeWarnings
        (lambda f: f.assign(bmi=[1e39, 1.0]), "beyond float32's range, 3.4e38) in column(s) 'bmi'"),
        (lambda f: f.to_numpy()[:, :3], "3 feature(s) per row, the model expects 4"),
    ],
)
def test_unusable_input_is_one_line_naming_the_columns(change, message: str) -> None:
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter("error")  # and no RuntimeWarning on the way
        feature_matrix(change(_frame()), FEATURES)
    assert message in str(err.value) and "\n" not in str(err.value)
