"""TPE in waves: a cohort search asks its configs a wave at a time, told each wave's results first.

Asked all at once, a budget is random search: TPE samples at random until it has been told
``n_startup_trials`` results (Optuna's default is 10), and the whole default search of 24
was one ask of 24. So a search asks in waves:

- **size** (:func:`wave_size`): a third of the budget, so TPE is told the first wave before
  it asks the other two thirds; at least one config per slot, so every slot has a cohort;
  at most what one round of cohorts trains well at once (32 on a CPU, 128 on a GPU);
- **TPE's start**: the first wave is TPE's random start (``n_startup_trials`` = one wave),
  every later wave is TPE's, told everything that ended before it;
- **within a wave**, Optuna's *constant liar*: configs asked but not yet told count as
  bad results, so a wave's configs spread out instead of piling onto TPE's current mode
  (without it, TPE proposed one config several times over in a wave). Its known cost:
  trials still running across rounds (survivors of a rung) count as bad too, so a wave
  asked beside them looks elsewhere; a bias away from configs already being trained.

Between rounds of successive halving the freed capacity is refilled with a new wave
(:mod:`tunefleet.search.cohorts.loop`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.study import one_sync, open_study

WAVES = 3  # the budget is asked in at least this many waves
CPU_WAVE, GPU_WAVE = 32, 128  # configs in one wave at most


def wave_size(budget: int, slots: int, gpu: bool) -> int:
    """How many configs one wave asks (see the module docstring)."""
    cap = GPU_WAVE if gpu else CPU_WAVE
    return max(1, min(budget, cap, max(slots, math.ceil(budget / WAVES))))


def open_waves(exp: ExperimentConfig, path: Path, slots: int, gpu: bool) -> tuple[optuna.Study, int]:
    """A cohort search's study, asked in waves: its wave size, TPE's random start of one wave, the liar."""
    wave = wave_size(exp.search.num_samples, slots, gpu)
    return open_study(exp, path, constant_liar=True, startup=wave), wave


def ask_wave(study: optuna.Study, sample: Callable[[Any], None], n: int) -> list[optuna.Trial]:
    """``n`` configs asked together: the constant liar spreads them; one journal sync for the lot."""
    trials = []
    with one_sync(study):
        for _ in range(n):
            trial = study.ask()
            sample(trial)
            trials.append(trial)
    return trials
