"""The end-of-search table says why trials failed, not only that they did."""

from __future__ import annotations

from tunefleet.pipeline.summary import PipelineSummary, format_summary


def test_failed_trials_show_the_first_error_line() -> None:
    counts = {"finished": 2, "stopped": 0, "failed": 4}
    s = PipelineSummary("sign", "e", "run", "sign-1", counts, "val_roc_auc", "max", first_error="RuntimeError: boom")
    lines = format_summary(s).splitlines()
    assert "failures     4 trials; the first: RuntimeError: boom" in lines
    assert s.as_json()["first_error"] == "RuntimeError: boom"
    clean = PipelineSummary("sign", "e", "run", "sign-1", {"finished": 2}, "val_roc_auc", "max")
    assert not any(line.startswith("failures") for line in format_summary(clean).splitlines())
