"""The cohort backend in one process: every member a trial, ASHA per member, TPE sees all, auto K, resume."""

from __future__ import annotations

import json

import pytest

from tunefleet.errors import TunefleetError
from tunefleet.search import load_experiment, run_search
from tunefleet.search.rungs import rung_epochs
from tunefleet.search.study import load_records


def _exp(tmp_path, **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    return load_experiment("breast_cancer", smoke=True, values={**base, **values})


def test_every_member_is_a_trial_and_asha_stops_weak_members_mid_cohort(tmp_path) -> None:
    exp = _exp(
        tmp_path,
        **{"search.num_samples": 12, "search.scheduler.grace_period": 2, "search.scheduler.reduction_factor": 2},
    )
    exp = exp.model_copy(
        update={
            "space": exp.space.model_copy(update={"epochs": exp.space.epochs.model_copy(update={"low": 8, "high": 12})})
        }
    )
    result = run_search(exp, progress=False)
    assert len(result.trials) == 12 and len({t.trial_id for t in result.trials}) == 12
    cohorts: dict[str, list] = {}
    for trial in result.trials:
        cohorts.setdefault(trial.cohort, []).append(trial)
    assert len(cohorts) >= 3  # 12 trials asked 4 at a time, split by layer count and optimizer
    rungs = set(rung_epochs(2, 2, 12))
    stopped = [t for t in result.trials if t.status == "stopped"]
    assert stopped, "ASHA stopped no member"
    for trial in stopped:
        assert len(trial.history) in rungs and len(trial.history) < trial.config.epochs  # stopped at a rung
    # a weak member stopped at a rung while a mate of its cohort went on past it
    assert any(any(len(mate.history) > len(t.history) for mate in cohorts[t.cohort] if mate is not t) for t in stopped)
    finished = [t for t in result.trials if t.status == "finished"]
    assert finished and all(t.bundle_dir and len(t.history) == t.metrics["epochs_run"] for t in finished)
    assert result.best in finished and result.best_bundle is not None
    # the sampler saw every member: one told trial per member, pruned for the stopped ones
    import optuna

    from tunefleet.search.study import open_study

    study = open_study(exp, result.path)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(stopped)
    assert states.count(optuna.trial.TrialState.COMPLETE) == len(finished)


def test_members_of_one_ask_differ(tmp_path) -> None:
    """Constant liar: the K configs asked before any is told are not copies of one another."""
    result = run_search(_exp(tmp_path, **{"search.num_samples": 8, "search.scheduler.name": "none"}), progress=False)
    lrs = [t.params["lr"] for t in result.trials]
    assert len(set(lrs)) == 8


class Seen:
    """An observer that remembers which trials it heard of."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def on_search_start(self, *args, **kwargs) -> None:
        pass

    def on_trial_end(self, record) -> None:
        self.ids.append(record.trial_id)


def test_resume_runs_only_what_is_missing(tmp_path) -> None:
    exp = _exp(tmp_path, **{"search.num_samples": 6, "search.scheduler.name": "none"})
    first = run_search(exp, name="resumable", progress=False)
    records = sorted(load_records(first.path), key=lambda r: r.trial_id)
    for record in records[3:]:  # as if the driver died after 3 members had ended
        (first.path / "trials" / f"{record.trial_id}.json").unlink()
    bigger = exp.model_copy(update={"search": exp.search.model_copy(update={"num_samples": 8})})
    seen = Seen()
    again = run_search(bigger, name="resumable", resume=True, progress=False, observers=[seen])
    assert len(again.trials) == 8 and len({t.trial_id for t in again.trials}) == 8
    # the 3 kept records are told again: one saved just before a kill may never have reached MLflow
    assert sorted(seen.ids) == sorted(t.trial_id for t in again.trials)
    kept = {r.trial_id: json.loads(r.to_json()) for r in records[:3]}
    assert all(json.loads(t.to_json()) == kept[t.trial_id] for t in again.trials if t.trial_id in kept)
    with pytest.raises(TunefleetError, match="a search named resumable already exists .* pass --resume"):
        run_search(exp, name="resumable", progress=False)  # never merged into the earlier search's state
