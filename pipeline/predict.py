"""``tunefleet predict``: a registered model on a user's CSV/Parquet file.

The file may be the training file itself: columns the model does not use (the label,
an id) are named once on stderr and left out. When the file holds the model's target
column (user-file searches record it in the model metadata), the command also prints
accuracy and the confusion matrix against it, so "does the champion still work on this
month's file" is one command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tunefleet.errors import TunefleetError, first_line
from tunefleet.fileio import written_whole
from tunefleet.pipeline.settings import TrackingSettings
from tunefleet.tables import check_data_path, compression_of, format_suffix, loader_for_file, read_table

OUTPUT_KINDS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _load(model_uri: str, settings: TrackingSettings) -> Any:
    import mlflow

    from tunefleet.pipeline.model_io import known_requirements

    try:
        with known_requirements():
            return mlflow.pyfunc.load_model(model_uri)
    except Exception as err:  # noqa: BLE001 - any load failure is one line
        raise TunefleetError(
            f"cannot load model {model_uri} from {settings.tracking_uri} ({first_line(err, 200)}); "
            "see `tunefleet models` for registered names, versions and aliases"
        ) from None


def check_output(output: Path) -> str:
    """The output's format, and its folder made: refused before the model loads, not after it predicted."""
    kind = OUTPUT_KINDS.get(format_suffix(output))
    if kind is None:
        raise TunefleetError(
            f"cannot tell the format of --output {output}; use a .csv (or .csv.gz) or .parquet file name"
        )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TunefleetError(
            f"cannot make the folder of --output {output} ({err.strerror}); pass another path"
        ) from None
    return kind


def _write(frame: Any, output: Path, kind: str) -> None:
    """The predictions, written whole or not at all (a failed write leaves no partial file)."""
    with written_whole(output) as part:
        if kind == "parquet":
            frame.to_parquet(part, index=False)
        else:
            frame.to_csv(part, index=False, compression=compression_of(output))


def agreement_report(truth: Any, predicted: Any, labels: list[Any]) -> str:
    """Accuracy and a confusion matrix (rows: true, columns: predicted), as printable lines."""
    import pandas as pd

    # compare as text: a label read back from a CSV (1) and a model's label (1.0 or "1") are the same class
    t, p = truth.astype(str).to_numpy(), pd.Series(predicted).astype(str).to_numpy()
    names = [str(label) for label in labels]
    matrix = pd.crosstab(pd.Categorical(t, categories=names), pd.Categorical(p, categories=names), dropna=False)
    matrix.index.name, matrix.columns.name = "true", "predicted"
    return f"accuracy {float((t == p).mean()):.4f} on {len(t)} rows\n{matrix.to_string()}"


def read_input(input_path: Path) -> Any:
    """The rows to predict; read before MLflow connects, so a missing or unreadable file fails at once."""
    check_data_path(input_path, "--input", "input file")
    frame = read_table(input_path, loader_for_file(str(input_path)))
    if len(frame) == 0:  # a header alone: "0 predictions written" would pass for a result
        raise TunefleetError(f"input file {input_path} has a header but no data rows; there is nothing to predict")
    return frame


def predict_file(model_uri: str, frame: Any, input_path: Path, output: Path | None, settings: TrackingSettings) -> int:
    """Predict ``frame`` (read from ``input_path`` by :func:`read_input`) with the model at ``model_uri``."""
    kind = check_output(output) if output else ""
    model = _load(model_uri, settings)
    meta = model.metadata.metadata or {}
    features = [str(c) for c in meta.get("feature_names", frame.columns)]
    target = meta.get("target")
    missing = [c for c in features if c not in {str(col) for col in frame.columns}]
    if missing:
        raise TunefleetError(
            f"input {input_path} lacks {len(missing)} of the model's feature column(s): {', '.join(missing[:5])}; "
            "pass a file with the training columns"
        )
    extra = [str(c) for c in frame.columns if str(c) not in features]
    if extra:
        print(f"ignoring {len(extra)} column(s) the model does not use: {', '.join(extra[:10])}", file=sys.stderr)
    try:
        out = model.predict(frame[[c for c in frame.columns if str(c) in features]])
    except TunefleetError:
        raise
    except Exception as err:  # noqa: BLE001 - schema or value problems: one line, the model's own words
        raise TunefleetError(f"input {input_path} does not fit the model ({first_line(err, 300)})") from None
    report = sys.stdout if output else sys.stderr  # keep printed CSV predictions clean
    if target and target in frame.columns:
        print(agreement_report(frame[target], out["label"], meta.get("class_labels", [])), file=report)
    if output:
        _write(out, output, kind)
        print(f"wrote {len(out)} predictions to {output}")
    else:
        print(out.to_csv(index=False), end="")
    return 0
