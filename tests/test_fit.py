"""A space fitted to the data: batch sizes and epochs follow the rows a trial trains on."""

from __future__ import annotations

import pytest

from tunefleet.errors import ConfigError
from tunefleet.search import load_experiment
from tunefleet.search.fit import FitConfig, batch_sizes, epoch_range


def test_batch_sizes_give_8_to_64_steps_an_epoch() -> None:
    rules = FitConfig()
    assert batch_sizes(364, rules) == [8, 16, 32]  # breast_cancer's fold: 46, 23 and 12 steps
    assert batch_sizes(57_600, rules) == [1024, 2048, 4096, 8192]
    assert batch_sizes(12, rules) == [1]  # too few rows for 8 steps of any batch: one row a step
    for n in (100, 5_000, 200_000):
        assert all(8 <= -(-n // b) <= 64 for b in batch_sizes(n, rules))


def test_epochs_give_300_to_3000_steps_within_5_to_200() -> None:
    rules = FitConfig()
    assert epoch_range(364, 16, rules) == (14, 131)  # 23 steps an epoch
    assert epoch_range(57_600, 2048, rules) == (11, 104)
    assert epoch_range(12, 1, rules) == (25, 200)  # capped at 200 epochs
    assert epoch_range(10_000_000, 4096, rules) == (5, 5)  # at least 5 epochs


def test_a_fitted_space_is_made_concrete_once_the_data_is_there_and_a_given_one_is_kept() -> None:
    exp = load_experiment("breast_cancer")
    assert exp.space["batch_size"].type == exp.space["epochs"].type == "fit"
    fitted = exp.fitted(exp.load())  # 5 folds of train + validation: 364 rows a fold
    assert fitted.space["batch_size"].values == [8, 16, 32]
    assert (fitted.space["epochs"].low, fitted.space["epochs"].high) == (14, 131)
    given = load_experiment("mnist")  # its conf names its batch sizes and epochs
    assert given.space["batch_size"].values == [64, 128, 256] and given.space["epochs"].high == 15
    with pytest.raises(ConfigError, match="width cannot be fitted to the data"):
        load_experiment("breast_cancer", overrides=["space.width={type: fit}"])
    named = load_experiment("breast_cancer", overrides=["space.epochs={type: fit, low: 3, high: 9}"])
    assert (named.space["epochs"].type, named.space["epochs"].low, named.space["epochs"].high) == ("int", 3, 9)
    with pytest.raises(ConfigError, match="int needs both 'low' and 'high'"):
        load_experiment("breast_cancer", overrides=["space.epochs={type: fit, low: 3}"])
