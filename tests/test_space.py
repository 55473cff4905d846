"""The space declared once: the sampler, a trial's values and the spec's checks all follow the declarations."""

from __future__ import annotations

from pathlib import Path

from tests.cases import sample_params
from tunefleet.search.experiment import load_experiment
from tunefleet.search.space import hidden_widths
from tunefleet.train_config import TrainConfig


def test_variable_length_widths_space() -> None:
    exp = load_experiment("breast_cancer")
    params = sample_params(exp, 60)
    depths = {len(hidden_widths(p)) for p in params}
    assert depths == {0, 1, 2}
    for p in params:
        cfg = exp.trial_config(p)
        assert len(cfg.hidden_widths) == p["n_layers"] and cfg.seed == exp.search.seed
        assert cfg.lr == (p["lr"] if p["optimizer"] == "adam" else p["sgd_lr"])  # each optimizer its own range
        assert ("momentum" in p) == (p["optimizer"] == "sgd")  # conditional parameter
        assert "threshold" not in p


def test_threshold_search_mode_samples_threshold() -> None:
    exp = load_experiment("breast_cancer", overrides=["threshold.mode=search"])
    params = sample_params(exp, 5, search_threshold=True)
    for p in params:
        cfg = exp.trial_config(p)
        assert cfg.threshold.mode == "search" and cfg.threshold.value == p["threshold"]
        assert 0.05 <= p["threshold"] <= 0.95


def test_one_declaration_is_all_a_new_hyperparameter_needs() -> None:
    """The space's module with one more line (patience, a TrainConfig field): the spec requires its
    distribution, refuses a value a trial would refuse, the sampler draws it and a trial trains with it."""
    import sys
    import types

    import optuna
    import pytest
    from pydantic import ValidationError

    from tunefleet.search import space

    source = Path(space.__file__).read_text()
    line = '    Hyperparameter("weight_decay", float),\n'
    assert line in source
    patched = source.replace(line, line + '    Hyperparameter("patience", int, whole=True),\n')
    module = types.ModuleType("patched_space")
    module.__file__ = space.__file__
    sys.modules["patched_space"] = module
    try:
        exec(compile(patched, "patched_space", "exec"), module.__dict__)
        given = ["space.batch_size={type: choice, values: [32]}", "space.epochs={type: int, low: 5, high: 9}"]
        base = load_experiment("breast_cancer", overrides=given).space.model_dump()
        with pytest.raises(ValidationError, match="patience"):
            module.SpaceConfig.model_validate(base)  # its distribution is required
        with pytest.raises(ValidationError, match="patience: this space gives it 0, which a trial refuses"):
            module.SpaceConfig.model_validate({**base, "patience": {"type": "int", "low": 0, "high": 5}})
        spec = module.SpaceConfig.model_validate({**base, "patience": {"type": "int", "low": 2, "high": 5}})
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
        module.SpaceSampler(spec, search_threshold=False)(trial)
        assert 2 <= trial.params["patience"] <= 5
        values = module.searched_values(trial.params)
        assert values["patience"] == trial.params["patience"] and "patience" in module.SEARCHED_KEYS
        assert TrainConfig.model_validate(values).patience == trial.params["patience"]
    finally:
        del sys.modules["patched_space"]
