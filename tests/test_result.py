"""Trial records and the progress lines that report them."""

from __future__ import annotations


def test_progress_lines_show_a_dash_until_a_trial_finishes(capsys) -> None:
    """Stopped trials do not count for ``best``: before the first finished one it reads "-", not "nan"."""
    from tunefleet.search.result import ProgressPrinter, TrialRecord
    from tunefleet.train_config import TrainConfig

    printer = ProgressPrinter("val_roc_auc", "max", total=3)
    for trial_id, status, value in [("t0", "stopped", 0.91), ("t1", "finished", 0.95), ("t2", "finished", 0.93)]:
        printer.on_trial_end(TrialRecord(trial_id, {}, TrainConfig(), status, metrics={"val_roc_auc": value}))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("best=")[1].split()[0] for line in lines] == ["-", "0.9500", "0.9500"]
    assert "val_roc_auc=0.9100" in lines[0] and "nan" not in "".join(lines)
