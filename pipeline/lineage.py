"""Dataset lineage in MLflow's own terms: the split datasets as run inputs.

Each split becomes an MLflow dataset whose digest is the split hash (the same hash is
on every run and model version as the ``split_hash`` tag), so the UI's Dataset column
and its dataset filter show which data a run trained, selected and was tested on, and
two runs with the same digest are comparable. The parent run gets all three splits;
a trial's child run gets the two it used (train, validation): trials never see test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunefleet.search.experiment import ExperimentConfig
from tunefleet.splits import PreparedData

CONTEXT_TAG = "mlflow.data.context"
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "test"}
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"  # MLflow 3's UI then opens the experiment on its runs


def _source(exp: ExperimentConfig) -> tuple[str, str]:
    path = exp.dataset.options.get("path")
    if path:
        return "local", json.dumps({"uri": Path(str(path)).expanduser().resolve().as_uri()})
    return "code", json.dumps({"tags": {"mlflow.source.name": f"tunefleet.datasets:{exp.dataset.loader}"}})


def data_params(data: PreparedData) -> dict[str, str]:
    """The parent run's ``data.*`` params: each split's rows, the model's input width, and what
    became of text columns and empty cells (``tunefleet.encoding``), which the start line also says."""
    params = {f"data.{k}_rows": str(v) for k, v in data.sizes().items()}
    params["data.n_features"] = str(data.n_features)
    text = [c.name for c in data.encoding.text]
    filled = [c.name for c in data.encoding.filled]
    if text:
        params["data.text_columns"] = json.dumps(text)[:6000]
    if filled:
        params["data.filled_columns"] = json.dumps(filled)[:6000]
    return params


def split_inputs(exp: ExperimentConfig, data: PreparedData) -> dict[str, Any]:
    """One ``DatasetInput`` per split, keyed by split name (train, val, test)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.types import ColSpec, Schema

    source_type, source = _source(exp)
    kinds = ["float" if c.levels is None else "string" for c in data.encoding.columns]
    schema = json.dumps(
        {"mlflow_colspec": Schema([ColSpec(k, n) for k, n in zip(kinds, data.feature_names, strict=True)]).to_dict()}
    )
    sizes = data.sizes()
    out = {}
    for split, context in SPLIT_CONTEXTS.items():
        dataset = Dataset(
            name=f"{exp.name}-{context}",
            digest=data.split_hash,
            source_type=source_type,
            source=source,
            schema=schema,
            profile=json.dumps({"num_rows": sizes[split], "num_features": data.n_features}),
        )
        out[split] = DatasetInput(dataset, tags=[InputTag(CONTEXT_TAG, context)])
    return out
