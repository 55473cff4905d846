"""How many trials a cohort holds, how many configs a wave asks, and how many slots a small search starts."""

from __future__ import annotations

from tunefleet.catalog import dataset_conf
from tunefleet.search import load_experiment
from tunefleet.search.cohorts.sizing import cohort_cap, slots_worth_starting
from tunefleet.search.waves import wave_size


def test_a_cohort_holds_what_pays_off_its_folds_counted(mnist_root) -> None:
    exp = load_experiment("breast_cancer")
    holdout = dataset_conf("breast_cancer").model_copy(update={"split": exp.split.model_copy(update={"cv_folds": 1})})
    assert cohort_cap(exp, holdout.load(), gpu=False) == 32  # small nets on a CPU: 32 members
    assert cohort_cap(exp, exp.load(), gpu=False) == 6  # 5 folds each: 6 trials, 30 members
    assert cohort_cap(exp, exp.load(), gpu=True) == 25  # a GPU is busy only with many
    mnist = dataset_conf("mnist")
    options = {"root": str(mnist_root), "download": False}
    mnist_data = mnist.model_copy(update={"dataset": mnist.dataset.model_copy(update={"options": options})}).load()
    assert cohort_cap(exp, mnist_data, gpu=False) == 1  # compute-bound on a CPU already
    assert (
        cohort_cap(
            exp.model_copy(update={"search": exp.search.model_copy(update={"cohort_size": 4})}), mnist_data, gpu=False
        )
        == 4
    )


def test_a_budget_is_asked_in_three_waves_of_at_least_one_config_a_slot() -> None:
    assert wave_size(24, slots=2, gpu=False) == 8
    assert wave_size(256, slots=2, gpu=False) == 32 and wave_size(256, slots=2, gpu=True) == 86
    assert wave_size(4, slots=2, gpu=False) == 2 and wave_size(1, slots=2, gpu=False) == 1
    assert wave_size(6, slots=4, gpu=False) == 4  # every slot gets a cohort


def test_a_search_smaller_than_a_workers_start_uses_one_slot() -> None:
    """Every smoke search of a seed tutorial trains for less than a worker's start-up costs;
    a real search (the defaults) uses every slot."""
    for name in ("sign", "threshold_1d", "student_hours", "breast_cancer"):
        smoke = load_experiment(name, smoke=True)
        data = smoke.load()
        assert slots_worth_starting(smoke.fitted(data), data, slots=4) == 1, name
    exp = load_experiment("breast_cancer")
    data = exp.load()
    assert slots_worth_starting(exp.fitted(data), data, slots=4) == 4
