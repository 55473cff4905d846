"""The define-by-run search space.

Both backends sample through :class:`SpaceSampler` (an Optuna define-by-run function,
picklable so Ray can checkpoint the searcher) and turn the flat sampled params into a
``train_one`` config with :meth:`search.spec.ExperimentConfig.trial_config`.
"""

from __future__ import annotations

from typing import Any

import optuna

from search.space_spec import ParamSpec, SpaceConfig
from search.spec import ExperimentConfig


def _suggest(trial: optuna.Trial, name: str, spec: ParamSpec) -> Any:
    if spec.type == "choice":
        assert spec.values is not None
        return trial.suggest_categorical(name, list(spec.values))
    assert spec.low is not None and spec.high is not None
    if spec.type == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high))
    return trial.suggest_float(name, float(spec.low), float(spec.high), log=spec.type == "loguniform")


class SpaceSampler:
    """Define-by-run space: ``n_layers`` first, then one ``width_i`` per layer.

    Momentum is sampled only for SGD (Adam ignores it) and the threshold only when the
    experiment searches it, so TPE never models parameters that have no effect.
    """

    def __init__(self, space: SpaceConfig, search_threshold: bool) -> None:
        self.space = space
        self.search_threshold = search_threshold

    def __call__(self, trial: optuna.Trial) -> None:
        s = self.space
        _suggest(trial, "lr", s.lr)
        _suggest(trial, "batch_size", s.batch_size)
        n_layers = _suggest(trial, "n_layers", s.n_layers)
        for i in range(int(n_layers)):
            _suggest(trial, f"width_{i}", s.width)
        _suggest(trial, "epochs", s.epochs)
        if _suggest(trial, "optimizer", s.optimizer) == "sgd":
            _suggest(trial, "momentum", s.momentum)
        _suggest(trial, "weight_decay", s.weight_decay)
        if self.search_threshold:
            _suggest(trial, "threshold", s.threshold)


def sampler_for(exp: ExperimentConfig, task: str) -> SpaceSampler:
    return SpaceSampler(exp.space, search_threshold=task == "binary" and exp.threshold.mode == "search")
