"""Hyperparameter importance from the backend-neutral records, on the highest level enough trials reached."""

from __future__ import annotations

import dataclasses

import numpy as np
import optuna

from tunefleet.search import load_experiment
from tunefleet.search.importance import MIN_TRIALS, importances, replay_study
from tunefleet.search.result import TrialRecord


def _exp(tmp_path, *overrides: str, **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    given = ["space.batch_size={type: choice, values: [16, 32]}", "space.epochs={type: int, low: 6, high: 20}"]
    return load_experiment("breast_cancer", overrides=[*given, *overrides], values={**base, **values})


def _records(exp, n: int, seed: int = 0) -> list[TrialRecord]:
    """``n`` finished trials whose metric depends on the learning rate alone (best at 1e-2), either optimizer's."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    records = []
    for i in range(n):
        trial = study.ask()
        exp.sampler("binary")(trial)
        config = exp.trial_config(trial.params)
        distance = float((np.log10(config.lr) + 2.0) ** 2)
        value = -distance if exp.mode == "max" else distance
        history = [{"epoch": float(e), exp.metric: value} for e in range(1, config.epochs + 1)]
        records.append(TrialRecord(f"t{i:02d}", dict(trial.params), config, "finished", {exp.metric: value}, history))
    return records


def test_importance_ranks_the_learning_rate_whatever_the_optimizer(tmp_path) -> None:
    """Adam's ``lr`` and SGD's ``sgd_lr`` set one learning rate: ranked as one ``lr`` over both
    ranges, it comes first. Ranked apart, each exists in only some trials, and Optuna's
    evaluators leave out a parameter some trials lack: the learning rate was not ranked at all."""
    exp = _exp(tmp_path)
    records = _records(exp, 30)
    assert {"lr", "sgd_lr"} <= {k for r in records for k in r.params}  # both optimizers sampled
    found = importances(exp, "binary", records)
    assert found.note is None and found.basis == "30 trials' final values"
    for name in ("fanova", "ped_anova"):
        shares = found.shares[name]
        assert max(shares, key=shares.get) == "lr" and "sgd_lr" not in shares, shares
    assert len(replay_study(exp, "binary", records, {r.trial_id: 0.0 for r in records[:5]}).trials) == 5


def test_importance_under_early_stopping_ranks_the_highest_rung_enough_trials_reached(tmp_path) -> None:
    """Successive halving: 24 trials reach epoch 5 (the first rung), 8 reach 15, 3 finish. The old
    rule (4 finished trials) ranked the 3 survivors: none. Now the rung at epoch 15 is ranked,
    and the summary says so."""
    exp = _exp(tmp_path, "space.epochs={type: int, low: 20, high: 20}")
    assert (exp.search.scheduler.name, exp.search.scheduler.grace_period, exp.search.scheduler.reduction_factor) == (
        "sh", 5, 3,
    )  # fmt: skip
    records = _records(exp, 24)
    ended = []
    for i, r in enumerate(records):
        reached = 20 if i < 3 else 15 if i < 8 else 5
        status = "finished" if reached == 20 else "stopped"
        ended.append(dataclasses.replace(r, status=status, history=r.history[:reached]))
    found = importances(exp, "binary", ended)
    assert found.basis == "8 trials' values at epoch 15 (a rung)" and found.shares["fanova"]
    fewer = [
        dataclasses.replace(r, status="stopped", history=r.history[:5]) if i == 7 else r for i, r in enumerate(ended)
    ]
    first_rung = importances(exp, "binary", fewer)  # 7 trials at epoch 15: too few, so the first rung
    assert first_rung.basis == "24 trials' values at epoch 5 (the first rung)"


def test_too_few_trials_or_no_difference_say_why(tmp_path) -> None:
    exp = _exp(tmp_path)
    records = _records(exp, 12)
    few = importances(exp, "binary", records[: MIN_TRIALS - 1])
    assert (
        few.shares == {} and few.note == f"7 trials reached a rung or the end; importance needs at least {MIN_TRIALS}"
    )
    same = [dataclasses.replace(r, metrics={exp.metric: 0.0}) for r in records]
    flat = importances(exp, "binary", same)
    assert flat.shares == {} and flat.note == f"12 trials' final values are all {exp.metric} 0: no difference to rank"
