"""Hyperparameter importance from the backend-neutral records."""

from __future__ import annotations

import dataclasses

from tunefleet.search import load_experiment


def _exp(tmp_path, **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    given = ["space.batch_size={type: choice, values: [16, 32]}", "space.optimizer={type: choice, values: [adam]}"]
    return load_experiment("breast_cancer", smoke=True, overrides=given, values={**base, **values})


def test_importance_ranks_the_parameter_that_decides_the_metric(tmp_path) -> None:
    """Records whose validation metric depends on lr alone: both evaluators rank lr first."""
    import numpy as np
    import optuna

    from tunefleet.search.importance import importances, replay_study
    from tunefleet.search.result import TrialRecord

    exp = _exp(tmp_path, **{"search.cohort_size": 1})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    records = []
    for i in range(30):
        trial = study.ask()
        exp.sampler("binary")(trial)
        distance = float((np.log10(trial.params["lr"]) + 2.0) ** 2)  # best at lr = 1e-2
        value = -distance if exp.mode == "max" else distance
        config = exp.trial_config(trial.params)
        records.append(TrialRecord(f"t{i}", dict(trial.params), config, "finished", {exp.metric: value}))
    records.append(TrialRecord("stopped", dict(records[0].params), records[0].config, "stopped", {exp.metric: 0.0}))
    assert len(replay_study(exp, "binary", records).trials) == 30  # finished trials only
    ranked, why = importances(exp, "binary", records)
    assert why is None
    for name in ("fanova", "ped_anova"):
        assert max(ranked[name], key=ranked[name].get) == "lr", ranked[name]
    assert importances(exp, "binary", records[:2]) == ({}, "2 finished trials; importance needs at least 4")
    same = [dataclasses.replace(r, metrics={exp.metric: 0.0}) for r in records[:5]]  # every trial perfect
    why = f"the 5 finished trials all scored {exp.metric} 0: no difference to rank"
    assert importances(exp, "binary", same) == ({}, why)
