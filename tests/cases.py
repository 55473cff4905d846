"""Small cases several test files share."""

from __future__ import annotations

import numpy as np


def binary_case(seed: int, n: int = 200, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.001, 0.999)
    if ties:
        p = np.clip(np.round(p, 1), 0.05, 0.95)
    return y, p


def sample_params(exp, n: int, search_threshold: bool = False) -> list[dict]:
    """``n`` configs drawn at random (seeded) through the space's own sampler (fitted to 400 rows first)."""
    import optuna

    from tunefleet.search.fit import fitted_space
    from tunefleet.search.space import SpaceSampler

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampler = SpaceSampler(fitted_space(exp.space, exp.fit, 400), search_threshold)
    out = []
    for _ in range(n):
        trial = study.ask()
        sampler(trial)
        out.append(dict(trial.params))
        study.tell(trial, 0.0)
    return out
