"""The space declared once: the sampler, a trial's values and the spec's checks all follow the declarations."""

from __future__ import annotations

import optuna

from tunefleet.search.experiment import load_experiment
from tunefleet.search.space import SpaceSampler, hidden_widths


def _sample(exp, n: int, search_threshold: bool = False) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampler = SpaceSampler(exp.space, search_threshold)
    out = []
    for _ in range(n):
        trial = study.ask()
        sampler(trial)
        out.append(dict(trial.params))
        study.tell(trial, 0.0)
    return out


def test_variable_length_widths_space() -> None:
    exp = load_experiment("breast_cancer")
    params = _sample(exp, 60)
    depths = {len(hidden_widths(p)) for p in params}
    assert depths == {0, 1, 2}
    for p in params:
        cfg = exp.trial_config(p)
        assert len(cfg.hidden_widths) == p["n_layers"] and cfg.lr == p["lr"] and cfg.seed == exp.search.seed
        assert ("momentum" in p) == (p["optimizer"] == "sgd")  # conditional parameter
        assert "threshold" not in p


def test_threshold_search_mode_samples_threshold() -> None:
    exp = load_experiment("breast_cancer", overrides=["threshold.mode=search"])
    params = _sample(exp, 5, search_threshold=True)
    for p in params:
        cfg = exp.trial_config(p)
        assert cfg.threshold.mode == "search" and cfg.threshold.value == p["threshold"]
        assert 0.05 <= p["threshold"] <= 0.95
