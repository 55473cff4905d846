"""Warm start: earlier trials checked against today's space, and TPE learning from them, the stopped ones too."""

from __future__ import annotations

import math

import numpy as np
import optuna

from tunefleet.search import load_experiment, run_search
from tunefleet.search.study import open_study, seed_study
from tunefleet.search.warm import Earlier, as_trial, warm_trials

ADAM = ["space.optimizer={type: choice, values: [adam]}", "space.n_layers={type: int, low: 0, high: 0}"]


def _exp(tmp_path, overrides=(), **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 1}
    return load_experiment(
        "sign", smoke=True, overrides=list(overrides), values={**base, "search.scheduler.name": "none", **values}
    )


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
    pruned = as_trial(exp, "binary", good, 0.4, stopped_at=5)  # stopped at a rung: TPE's pruned trial
    assert pruned is not None and pruned.state == optuna.trial.TrialState.PRUNED
    assert pruned.intermediate_values == {5: 0.4} and pruned.value is None
    assert as_trial(exp, "binary", {**good, "lr": 5.0}, 0.3) is None  # outside today's lr bounds
    assert as_trial(exp, "binary", {**good, "optimizer": "rmsprop"}, 0.3) is None  # a choice that is gone
    assert as_trial(exp, "binary", {k: v for k, v in good.items() if k != "weight_decay"}, 0.3) is None  # new param
    assert as_trial(exp, "binary", {**good, "momentum": 0.5}, 0.3) is None  # momentum only exists for sgd
    earlier = [
        Earlier(good, 0.3),
        Earlier({**good, "lr": 5.0}, 0.1),
        Earlier(good, float("nan")),
        Earlier(good, 0.5, 5),
    ]
    kept, dropped = warm_trials(exp, "binary", earlier)
    assert [t.state.name for t in kept] == ["COMPLETE", "PRUNED"] and dropped == 2


def _decades_from_best(exp, tmp_path, warm: list[optuna.trial.FrozenTrial], asks: int = 30) -> np.ndarray:
    """How far (in decades) from lr = 1e-2 TPE's first ``asks`` suggestions fall, after ``warm``."""
    study = open_study(exp, tmp_path)
    seed_study(study, [], tuple(warm))
    out = []
    for _ in range(asks):
        trial = study.ask()
        exp.sampler("binary")(trial)
        out.append(abs(math.log10(trial.params["lr"]) + 2))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # TPE reads only the earlier trials
    return np.array(out)


def _earlier(exp, n: int, seed: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` random earlier configs whose loss grows with lr's distance from 1e-2."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        exp.sampler("binary")(trial)
        loss = (math.log10(trial.params["lr"]) + 2) ** 2
        out.append(as_trial(exp, "binary", trial.params, loss))
    return [t for t in out if t is not None]


def test_warm_started_tpe_suggests_near_the_earlier_best(tmp_path) -> None:
    """Earlier trials whose loss is lowest at lr = 1e-2: warm-started TPE asks near it at once, where
    a cold start samples at random for its first trials. (The old test checked only that a
    warm-started first draw differed from a cold one, which any change of the seed passes.)"""
    exp = _exp(tmp_path, ADAM)
    assert exp.mode == "min"
    warm = _decades_from_best(exp, tmp_path / "warm", _earlier(exp, 40, seed=1))
    cold = _decades_from_best(exp, tmp_path / "cold", [])
    assert np.median(warm) < 0.5 * np.median(cold), (np.median(warm), np.median(cold))


def test_stopped_earlier_trials_tell_tpe_where_not_to_look(tmp_path) -> None:
    """An earlier search under successive halving: 3 trials finished near lr = 1e-2 and 21 were
    stopped at a rung, spread below it. Told of the finished ones only (as before), TPE has 3
    trials, fewer than its 10 random startup trials, and asks at random; told of the stopped
    ones too, as pruned with their last report (as TPE's own), it asks near 1e-2 at once."""
    exp = _exp(tmp_path, ADAM)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    first = study.ask()
    exp.sampler("binary")(first)
    base = dict(first.params)
    finished = [as_trial(exp, "binary", {**base, "lr": 10 ** (-2 + d)}, d**2) for d in (-0.2, 0.0, 0.2)]
    stopped = [as_trial(exp, "binary", {**base, "lr": 10**x}, 1.0, stopped_at=5) for x in np.linspace(-4, -2.6, 21)]
    alone = _decades_from_best(exp, tmp_path / "finished", finished)  # type: ignore[arg-type]
    both = _decades_from_best(exp, tmp_path / "both", [*finished, *stopped])  # type: ignore[list-item]
    assert np.mean(both < 0.5) > 0.9 and np.mean(alone < 0.5) < 0.6, (np.mean(both < 0.5), np.mean(alone < 0.5))


def test_a_warm_started_search_keeps_only_its_own_trials(tmp_path) -> None:
    earlier = run_search(_exp(tmp_path / "a", **{"search.num_samples": 6}), progress=False)
    candidates = [Earlier(t.params, t.metric(earlier.experiment.metric)) for t in earlier.trials]
    warm, dropped = warm_trials(earlier.experiment, "binary", candidates)
    assert len(warm) == 6 and dropped == 0
    warmed = run_search(_exp(tmp_path / "c", **{"search.num_samples": 2}), progress=False, warm=tuple(warm))
    assert len(warmed.trials) == 2  # warm trials seed the sampler; they are not this search's trials
