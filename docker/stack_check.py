"""Host-side checks of a running compose stack (called by docker/stack-test.sh).

From this machine, through the stack's published MLflow server only: the search's trial
runs and the Ray nodes they ran on, and the champion loaded by alias and predicting raw
rows. Prints one JSON object for the report; exits non-zero with the reason on failure.

    python docker/stack_check.py --summary last-search.json --nodes nodes.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path


def trials_per_worker(parent_run_id: str, workers: dict[str, str]) -> dict[str, int]:
    """Finished trial runs per worker container, from the child runs' ``node_id`` tags."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp_id = client.get_run(parent_run_id).info.experiment_id
    children = client.search_runs(
        [exp_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}' and tags.`tunefleet.role` = 'trial'", max_results=1000
    )
    nodes = collections.Counter(run.data.tags.get("node_id", "") for run in children)
    unknown = set(nodes) - set(workers)
    if unknown:
        raise SystemExit(f"trials ran on nodes that are not workers: {sorted(unknown)} (workers: {workers})")
    return {workers[node]: count for node, count in sorted(nodes.items())}


def champion_predicts(model_uri: str, rows: int = 20) -> dict[str, float | str]:
    """Load the champion by alias and predict raw breast_cancer rows (original column names)."""
    import mlflow
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    sample = data.frame.sample(rows, random_state=0)
    truth = data.target_names[sample["target"].to_numpy()]  # the model answers in class names
    model = mlflow.pyfunc.load_model(model_uri)
    out = model.predict(sample.drop(columns="target"))
    labels = out["label"].to_numpy()
    proba = out["probability"].to_numpy(dtype=float)  # binary: label + probability
    if not ((proba >= 0) & (proba <= 1)).all():
        raise SystemExit(f"champion returned probabilities outside [0, 1]: {proba}")
    return {
        "uri": model_uri,
        "rows": rows,
        "accuracy_on_rows": float((labels == truth).mean()),
        "columns": ",".join(map(str, out.columns)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, required=True, help="the search job's --json file")
    parser.add_argument("--nodes", type=Path, required=True, help='{"<ray node id>": "<container>"} of the workers')
    args = parser.parse_args()
    summary = json.loads(args.summary.read_text())
    workers = json.loads(args.nodes.read_text())
    per_worker = trials_per_worker(summary["parent_run_id"], workers)
    if len(per_worker) < 2:
        raise SystemExit(f"trials ran on {len(per_worker)} worker(s), not on both: {per_worker}")
    uri = summary.get("model_uri")
    if not uri or summary.get("alias") != "champion":
        raise SystemExit(f"the search registered no champion: {summary.get('promotion_reason')}")
    champion = champion_predicts(uri)
    report = {
        "trials_per_worker": per_worker,
        "champion": champion,
        "trials_line": ", ".join(f"{worker} {n}" for worker, n in per_worker.items()),
        "champion_line": (
            f"{uri} loaded on the host from {os.environ.get('MLFLOW_TRACKING_URI')}; {champion['rows']} raw rows "
            f"-> {champion['columns']}, accuracy {champion['accuracy_on_rows']:.2f}"
        ),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
