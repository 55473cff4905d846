"""Search-layer behaviour on the Optuna backend: threshold modes, resume. (The same first TPE
trial under every driver, and every seed dataset end to end, are checked through the CLI in
tests/test_pipeline_cli.py.)"""

from __future__ import annotations

import pytest

from tunefleet.search import load_experiment, run_search


def _exp(name: str, tmp_path, *overrides: str, **kw):
    return load_experiment(name, smoke=True, overrides=[f"search.storage_path={tmp_path}", *overrides], **kw)


@pytest.mark.integration
def test_the_median_rule_trains_every_tune_trial_once(local_ray, tmp_path) -> None:
    """Ray's median rule paused a trial for the waiting ones while too few had finished to take
    a median, and a trial checkpoints only with its result: a paused one trained again from
    scratch (3 to 5 of 12 in a breast_cancer search), and Tune's log warned 'Remote file not
    found' on the quiet output."""
    exp = _exp(
        "breast_cancer", tmp_path, "search.num_samples=8", "search.cohort_size=1", "search.scheduler.name=median",
        "search.scheduler.grace_period=1", "search.report_every_epochs=1",
    )  # fmt: skip
    result = run_search(exp, progress=False)
    assert len(result.trials) == 8
    checkpoints = [p.name for p in result.path.glob("trial_*/checkpoint_*")]
    assert checkpoints and set(checkpoints) == {"checkpoint_000000"}  # one result, so one training, per trial


@pytest.mark.integration
def test_a_time_budget_ends_a_tune_search_with_the_trials_that_ran(local_ray, tmp_path) -> None:
    """Trials still waiting when the budget ran out are not results (they failed the search
    with a KeyError: a trial that never got its config has none to rebuild)."""
    exp = _exp(
        "breast_cancer", tmp_path, "search.num_samples=256", "search.cohort_size=1", "search.time_budget_s=20",
        "search.scheduler.name=none", "space.epochs={type: int, low: 2, high: 4}",
    )  # fmt: skip
    result = run_search(exp, progress=False)
    # how many started depends on the machine's load (none did in 6 s, once, in CI; none finished in 20 s
    # under the whole suite here, 14 did alone, and all of 64 did in one run of the suite at stop 34): at
    # least one started in 20 s, each that did has its config, and the budget ended the search before its
    # 256 trials (the test passed with none at 23b723d)
    assert 1 <= len(result.trials) < exp.search.num_samples
    assert all("batch_size" in t.params for t in result.trials), [t.params for t in result.trials]
