"""The MLflow pyfunc wrapper of a tunefleet bundle (logged as "models from code").

MLflow runs this file when the model is loaded; ``tunefleet`` travels with the model
as a code path, so loading needs MLflow (with its own dependencies), numpy, pandas,
pydantic and PyYAML, which are the model's requirements, but not this project, and not
torch: the bundle predicts in numpy.
``predict`` returns a DataFrame: ``label`` plus ``probability`` (binary) or one
``probability_<class>`` column per class.

How input is checked, and why this way. The model is logged with a *named* column
schema: one required column per training feature, of MLflow's ``Any`` type
(``tunefleet.pipeline.model_io.input_schema``). MLflow's own enforcement then does what it does
well, before ``predict`` runs, for every way in (``predict`` in Python, and
``dataframe_split`` / ``dataframe_records`` / ``inputs`` over REST):

- a missing feature column is refused, by name ("Model is missing inputs [...]");
- columns are put in training order, so any order works;
- extra columns (the label, an id) are dropped;
- a list of row dicts becomes a DataFrame.

The column type is ``Any`` rather than ``double`` because MLflow's ``double`` refuses
int64 columns (it only widens integers of up to 6 bytes) and booleans, which is exactly
what users' clinical and tabular files hold. Typing each column as the training file's
dtype would refuse the same column sent as floats, and ``Any`` takes a text feature's
levels as they are. So the conversion (numbers, and text columns' indicators), and the
errors for text in a numeric column and empty cells naming the column, live in one place:
``tunefleet.inputs.feature_matrix``, which the bundle applies to whatever MLflow passes
on. Schema enforcement stays on; only the dtype check is ours.

The one thing a named schema costs: a bare numpy array has no column names, and MLflow
refuses it before ``predict`` sees it. Pass ``pd.DataFrame(array, columns=feature_names)``
(the names are in ``model.metadata.metadata["feature_names"]``), or use the bundle
(``tunefleet.ModelBundle``), which takes arrays directly.

``predict`` is type-hinted with ``pd.DataFrame``: that is MLflow 3's documented way to
say "the signature, not the type hint, is the schema", and it is what stops the
"Add type hints to the predict method" warning at its source.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class TunefleetModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from tunefleet.bundle import ModelBundle

        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return self.bundle.predict_table(model_input)


mlflow.models.set_model(TunefleetModel())
