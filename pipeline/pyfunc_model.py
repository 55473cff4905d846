"""The MLflow pyfunc wrapper of a tunefleet bundle (logged as "models from code").

MLflow runs this file when the model is loaded; ``tunefleet`` travels with the model
as a code path, so loading needs torch, numpy and pandas but not this project.
``predict`` takes raw features (a DataFrame with the training columns, or an array)
and returns a DataFrame: ``label`` plus ``probability`` (binary) or one
``probability_<class>`` column per class.
"""

from __future__ import annotations

import warnings

import mlflow
from mlflow.pyfunc import PythonModel, PythonModelContext

# The signature logged with the model is the input schema; MLflow's nudge towards
# type-hinted predict methods is noise here.
warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")


class TunefleetModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from tunefleet.bundle import ModelBundle

        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    # No type hints on predict: MLflow would read them as a (list-typed) input schema;
    # the logged signature is the schema.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self.bundle.predict_table(model_input)


mlflow.models.set_model(TunefleetModel())
