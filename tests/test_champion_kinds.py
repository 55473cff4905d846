"""What a search registers may be a trial, an ensemble of trials, or the baseline: each loads by alias
in a fresh process and predicts raw frames (text, empty cells) through `tunefleet predict` and a real
`mlflow models serve`. A first model worse than its baseline on the test rows is not champion, and
smoke searches register under a name of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.services import BIN, free_port, process, wait_http
from tests.test_user_files import FEATURES, clinic_workdir, smoke_search_args
from tunefleet.pipeline.cli import main

pytestmark = pytest.mark.integration
BAD_TRIALS = [  # trials that learn nothing in one epoch at lr 1e-6
    "--set", "space.optimizer={type: choice, values: [adam]}",
    "--set", "space.lr={type: loguniform, low: 1.0e-6, high: 2.0e-6}",
    "--set", "space.epochs={type: int, low: 1, high: 1}",
]  # fmt: skip
SEARCHES = {  # model name -> what makes its champion what it is
    "ensembled": [],  # the default: on this file an ensemble of the baseline and a trial wins on validation
    "baselined": ["--set", "candidates.ensemble=0", *BAD_TRIALS],  # the baseline beats every trial
    "worse": ["--set", "candidates.ensemble=0", "--set", "candidates.baseline=false", *BAD_TRIALS],
}


@pytest.fixture(scope="module")
def searched(tmp_path_factory, local_ray):
    """Three smoke searches of one user file, one after another, in one tracking store."""
    root = tmp_path_factory.mktemp("kinds")
    summaries = {}
    with clinic_workdir(root) as (csv, db):
        for name, extra in SEARCHES.items():
            out = root / f"{name}.json"
            assert main([*smoke_search_args(csv, out), "--model-name", name, *extra]) == 0
            summaries[name] = json.loads(out.read_text())
        yield root, csv, db, summaries


def test_each_kind_of_champion_loads_by_alias_in_a_fresh_process_and_predicts_raw_frames(searched, capsys) -> None:
    root, csv, db, summaries = searched
    assert {name: s["champion"]["kind"] for name, s in summaries.items()} == {
        "ensembled": "ensemble", "baselined": "baseline", "worse": "trial",
    }  # fmt: skip
    raw = pd.read_csv(csv)  # the label and the id column still in it; text, and empty cells in bmi
    assert raw["bmi"].isna().any()
    for name in ("ensembled", "baselined"):
        uri = f"models:/{name}-smoke@champion"
        assert summaries[name]["alias"] == "champion" and summaries[name]["model_uri"] == uri
        script = (
            "import json, mlflow, pandas as pd\n"
            f"m = mlflow.pyfunc.load_model({uri!r})\n"
            f"out = m.predict(pd.read_csv({str(csv)!r}))\n"
            "print(json.dumps({'labels': out['label'].tolist(), 'p': out['probability'].tolist(),"
            " 'kind': m.metadata.metadata['kind']}))\n"
        )
        env = {**os.environ, "MLFLOW_TRACKING_URI": db}
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["kind"] == summaries[name]["champion"]["kind"]  # the model says what it is
        assert len(got["labels"]) == len(raw) and set(got["labels"]) <= {"healthy", "sick"}
        assert (pd.Series(got["labels"]) == raw["outcome"]).mean() > 0.75, name  # it learned something real
        out = root / f"{name}-pred.csv"
        assert main(["predict", uri, "--input", str(csv), "--output", str(out)]) == 0
        predicted = pd.read_csv(out)
        assert predicted["label"].tolist() == got["labels"], name  # the command and the loaded model agree
        assert predicted["probability"].to_numpy() == pytest.approx(got["p"], abs=1e-6)
    capsys.readouterr()


def test_a_first_model_worse_than_its_baseline_is_not_champion(searched) -> None:
    """Trials that learn nothing, with neither the baseline nor an ensemble to choose instead: the
    first version under its name is significantly worse than the baseline on the same test rows,
    so it is `challenger` (at 23b723d: champion, "first model registered under this name")."""
    _root, _csv, db, summaries = searched
    worse = summaries["worse"]
    assert worse["alias"] == "challenger" and worse["promotion_reason"].startswith(
        "first model registered under this name, but worse than the logistic-regression baseline "
        "(two-sided p < 0.05 and the 95% interval below 0): test "
    )
    client = MlflowClient(db)
    version = client.get_model_version("worse-smoke", worse["model_version"])
    assert version.tags["gate_vs_version"] == "baseline" and float(version.tags["gate_p_value"]) < 0.05
    with pytest.raises(Exception, match="alias champion not found|not found"):
        client.get_model_version_by_alias("worse-smoke", "champion")


def test_smoke_searches_register_under_their_own_name_and_count_the_split_s_decisions(searched) -> None:
    _root, _csv, db, summaries = searched
    client = MlflowClient(db)
    assert [s["registered_model"] for s in summaries.values()] == ["ensembled-smoke", "baselined-smoke", "worse-smoke"]
    for real in SEARCHES:  # the real names were never registered: no smoke model can be their champion
        assert not client.search_model_versions(f"name = '{real}'")
    assert len({s["split_hash"] for s in summaries.values()}) == 1  # one file, one split: three decisions on it
    assert [s["split_decisions"] for s in summaries.values()] == [1, 2, 3]
    tags = [client.get_model_version(s["registered_model"], s["model_version"]).tags for s in summaries.values()]
    assert [t["split_decisions"] for t in tags] == ["1", "2", "3"]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer: dict = json.loads(response.read())
    return answer


@pytest.mark.slow
def test_a_served_baseline_and_ensemble_answer_as_they_load(searched) -> None:
    root, csv, db, _summaries = searched
    import mlflow

    mlflow.set_tracking_uri(db)
    rows = pd.read_csv(csv).head(6)
    records = json.loads(rows[FEATURES].to_json(orient="records"))  # JSON: integers, text, null for an empty cell
    for name in ("ensembled", "baselined"):
        uri = f"models:/{name}-smoke@champion"
        expected = mlflow.pyfunc.load_model(uri).predict(rows)
        port = free_port()
        serve = [str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local"]
        serve += ["--host", "127.0.0.1", "-p", str(port)]
        with process(serve, Path(root) / f"serve-{name}.log", env={"MLFLOW_TRACKING_URI": db}) as server:
            wait_http(f"http://127.0.0.1:{port}/ping", timeout=180, proc=server)
            answer = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_records": records})["predictions"]
        assert [p["label"] for p in answer] == expected["label"].tolist(), name
        assert [p["probability"] for p in answer] == pytest.approx(expected["probability"].tolist(), abs=1e-6)
