"""Warm start: earlier trials checked against today's space, and TPE's first suggestions change with them."""

from __future__ import annotations

from tunefleet.search import load_experiment, run_search
from tunefleet.search.warm import as_trial, warm_trials


def _exp(tmp_path, **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 1}
    return load_experiment("sign", smoke=True, values={**base, "search.scheduler.name": "none", **values})


def test_earlier_params_must_fit_the_current_space(tmp_path) -> None:
    exp = _exp(tmp_path)
    good = {
        "lr": 0.01,
        "batch_size": 2,
        "n_layers": 1,
        "width_0": 16,
        "epochs": 3,
        "optimizer": "adam",
        "weight_decay": 1e-4,
    }
    trial = as_trial(exp, "binary", good, 0.3)
    assert trial is not None and trial.value == 0.3 and set(trial.distributions) == set(good)
    assert as_trial(exp, "binary", {**good, "lr": 5.0}, 0.3) is None  # outside today's lr bounds
    assert as_trial(exp, "binary", {**good, "optimizer": "rmsprop"}, 0.3) is None  # a choice that is gone
    assert as_trial(exp, "binary", {k: v for k, v in good.items() if k != "weight_decay"}, 0.3) is None  # new param
    assert as_trial(exp, "binary", {**good, "momentum": 0.5}, 0.3) is None  # momentum only exists for sgd
    kept, dropped = warm_trials(exp, "binary", [(good, 0.3), ({**good, "lr": 5.0}, 0.1), (good, float("nan"))])
    assert len(kept) == 1 and dropped == 2


def test_warm_started_tpe_suggests_differently_from_a_cold_start(tmp_path) -> None:
    earlier = run_search(_exp(tmp_path / "a", **{"search.num_samples": 12}), progress=False)
    candidates = [(t.params, t.metric(earlier.experiment.metric)) for t in earlier.trials if t.status == "finished"]
    warm, dropped = warm_trials(earlier.experiment, "binary", candidates)
    assert len(warm) == 12 and dropped == 0
    cold = run_search(_exp(tmp_path / "b", **{"search.num_samples": 2}), progress=False)
    warmed = run_search(_exp(tmp_path / "c", **{"search.num_samples": 2}), progress=False, warm=tuple(warm))
    assert cold.trials[0].params == earlier.trials[0].params  # same seed, no history: the same first draw
    assert warmed.trials[0].params != cold.trials[0].params  # 12 earlier trials: TPE models them at once
    assert len(warmed.trials) == 2  # warm trials seed the sampler; they are not this search's trials
