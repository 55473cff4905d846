"""One-line errors of the commands, before anything slow starts."""

from __future__ import annotations

import pytest

from tunefleet.errors import TunefleetError
from tunefleet.search.experiment import load_experiment


def test_a_time_budget_that_no_trial_finished_in_says_so() -> None:
    """Not "every trial's error is tagged on the child runs", when no trial failed and none ran through."""
    from tunefleet.pipeline.lifecycle import _best_and_test
    from tunefleet.search import SearchResult

    exp = load_experiment("sign", values={"search.time_budget_s": 0.5})
    empty = SearchResult(exp, exp.load(), "ray", "s", exp.search.storage_path, [], 0.5, None, None)
    with pytest.raises(TunefleetError, match=r"no trial finished within --time-budget 0.5 s .* give it more seconds"):
        _best_and_test(empty, "run")
    no_budget = SearchResult(exp.model_copy(update={"search": exp.search.model_copy(update={"time_budget_s": None})}),
                             empty.data, "ray", "s", empty.path, [], 0.5, None, None)  # fmt: skip
    with pytest.raises(TunefleetError, match="no trial finished .*tagged on the child runs"):
        _best_and_test(no_budget, "run")


def test_commands_that_read_a_store_refuse_a_missing_one_without_making_it(tmp_path, capsys) -> None:
    """MLflow made an empty SQLite file at a mistyped path (seconds of migrations), then said "not found"."""
    from tunefleet.pipeline.cli import main

    db, rows = tmp_path / "typo.db", tmp_path / "rows.csv"
    rows.write_text("x\n1.0\n")
    for argv in (["models"], ["promote", "m", "1"], ["ui"], ["predict", "models:/m@champion", "--input", str(rows)]):
        assert main([*argv, "--tracking-uri", f"sqlite:///{db}"]) == 2, argv
        assert capsys.readouterr().err.strip().splitlines() == [
            f"error: no tracking store at sqlite:///{db}: {db} does not exist; run this where the search ran, "
            "or pass --tracking-uri / MLFLOW_TRACKING_URI"
        ]
    assert not db.exists()
