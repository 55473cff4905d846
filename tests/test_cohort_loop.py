"""The cohort loop in one process: rounds, rungs judged together, refills, folds as members, reproducible."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from tunefleet.errors import TunefleetError
from tunefleet.search import load_experiment, run_search
from tunefleet.search.schedule import rung_epochs, rung_value
from tunefleet.search.study import load_records, open_study

WEIGHT_ATOL, METRIC_ATOL = 2e-4, 1e-4  # a cohort member against train_one (tests/test_cohort.py)


def _exp(tmp_path, cv: int = 1, **values):
    base = {
        "search.backend": "optuna",
        "search.storage_path": str(tmp_path),
        "search.num_samples": 12,
        "search.scheduler.grace_period": 2,
        "search.scheduler.reduction_factor": 2,
        "split.cv_folds": cv,
    }
    overrides = ["space.epochs={type: int, low: 8, high: 12}", "space.batch_size={type: choice, values: [32, 64]}"]
    return load_experiment("breast_cancer", overrides=overrides, values={**base, **values})


def test_trials_are_judged_at_their_rungs_and_stopped_ones_are_refilled(tmp_path) -> None:
    result = run_search(_exp(tmp_path), progress=False)
    assert len(result.trials) == 12 and len({t.trial_id for t in result.trials}) == 12
    rungs = set(rung_epochs(2, 2, 12))
    stopped = [t for t in result.trials if t.status == "stopped"]
    finished = [t for t in result.trials if t.status == "finished"]
    assert stopped and finished
    for trial in stopped:  # stopped at a rung, with its value there
        assert len(trial.history) in rungs and len(trial.history) < trial.config.epochs
        assert not np.isnan(rung_value(trial.history, len(trial.history), "val_roc_auc"))
    assert all(t.bundle_dir and len(t.history) == t.metrics["epochs_run"] for t in finished)
    # refills: trials asked after the first wave ended their rounds before trials of the first wave ended
    order = [int(t.trial_id.removeprefix("trial_")) for t in result.trials]  # in the order they ended
    first_wave_last = max(i for i, n in enumerate(order) if n < 4)
    assert any(n >= 4 for n in order[:first_wave_last]), order
    states = [t.state for t in open_study(result.experiment, result.path).trials]  # every trial told
    assert states.count(optuna.trial.TrialState.PRUNED) == len(stopped)
    assert states.count(optuna.trial.TrialState.COMPLETE) == len(finished)


def test_a_seeded_search_gives_the_same_trials_stops_and_results_again(tmp_path) -> None:
    """Decisions are read in trial order and members are independent of their mates: bit for bit."""
    a = run_search(_exp(tmp_path / "a"), progress=False)
    b = run_search(_exp(tmp_path / "b"), progress=False)

    def seen(result) -> list:
        return [(t.trial_id, t.status, t.params, t.history, t.metrics) for t in result.trials]

    assert seen(a) == seen(b)
    assert a.verdict is not None and b.verdict is not None
    assert a.verdict.champion.key == b.verdict.champion.key
    assert a.verdict.champion.val_metrics == b.verdict.champion.val_metrics


def test_a_refilled_trial_equals_train_one(tmp_path) -> None:
    """A trial asked in a later round trains beside trials resumed from their rungs: it is still
    train_one with its config, on the same split, within the cohort tolerance."""
    from tunefleet.train import train_one

    result = run_search(_exp(tmp_path), progress=False)
    later = [t for t in result.trials if t.status == "finished" and int(t.trial_id.removeprefix("trial_")) >= 4]
    assert later, "no trial of a refill finished"
    for trial in later:
        reference = train_one(trial.config, result.data)
        assert trial.metrics["best_epoch"] == reference.best_epoch
        for key in ("val_loss", "val_roc_auc", "val_accuracy"):
            assert trial.metrics[key] == pytest.approx(reference.metrics[key], abs=METRIC_ATOL), key
        from tunefleet.bundle import ModelBundle

        bundle = ModelBundle.load(trial.bundle_dir)
        for key, weights in reference.bundle.only.state_dict.items():
            np.testing.assert_allclose(bundle.only.state_dict[key], weights, atol=WEIGHT_ATOL, err_msg=key)


def test_cross_validated_trials_train_their_folds_as_members(tmp_path) -> None:
    """K folds x N configs in one stack: a finished trial equals train_cv of its config (its fold
    models, calibrated and thresholded on the out-of-fold predictions), within the cohort tolerance."""
    from tunefleet.cv import train_cv

    result = run_search(
        _exp(tmp_path, cv=3, **{"search.num_samples": 4, "search.scheduler.name": "none"}), progress=False
    )
    assert len(result.data.folds) == 3
    trial = next(t for t in result.trials if t.status == "finished")
    reference = train_cv(trial.config, result.data)
    for key in ("val_loss", "val_roc_auc", "temperature", "cv_folds"):
        assert trial.metrics[key] == pytest.approx(reference.metrics[key], abs=METRIC_ATOL), key
    from tunefleet.bundle import ModelBundle

    assert len(ModelBundle.load(trial.bundle_dir).members) == 3
    oof = np.load(f"{trial.bundle_dir}/val_probabilities.npy")
    assert len(oof) == sum(len(f.y_val) for f in result.data.folds)
    np.testing.assert_allclose(oof, reference.val_probabilities, atol=1e-4)


def test_a_time_budget_stops_the_asking_and_lets_the_trials_in_training_end(tmp_path) -> None:
    result = run_search(_exp(tmp_path, **{"search.time_budget_s": 0.01}), progress=False)
    assert len(result.trials) == 4  # the first wave (4 configs for 12 on one slot), none asked after
    assert all(t.status in ("finished", "stopped") for t in result.trials)


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
    for record in records[3:]:  # as if the driver died after 3 trials had ended
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
