"""How many configs an ask holds, and how many slots a small search starts."""

from __future__ import annotations

from tunefleet.catalog import dataset_conf
from tunefleet.search import load_experiment
from tunefleet.search.cohorts.sizing import auto_cohort_size, slots_worth_starting


def _exp(tmp_path, **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    return load_experiment("breast_cancer", smoke=True, values={**base, **values})


def test_auto_cohort_size_follows_model_size_and_device(tmp_path, mnist_root) -> None:
    exp = _exp(tmp_path, **{"search.cohort_size": "auto", "search.num_samples": 24})
    data = dataset_conf("breast_cancer").load()
    # small nets: one ask of all 24 (it splits into a cohort per layer count and optimizer: 6 here)
    assert auto_cohort_size(exp, data, slots=2, gpu=False) == 24
    many = exp.model_copy(update={"search": exp.search.model_copy(update={"num_samples": 256})})
    assert auto_cohort_size(many, data, slots=2, gpu=False) == 32  # the CPU cap
    one_group = exp.model_copy(
        update={
            "space": exp.space.model_copy(
                update={
                    "n_layers": exp.space.n_layers.model_copy(update={"low": 1, "high": 1}),
                    "optimizer": exp.space.optimizer.model_copy(update={"values": ["adam"]}),
                }
            )
        }
    )
    assert auto_cohort_size(one_group, data, slots=2, gpu=False) == 12  # one cohort per slot
    mnist = dataset_conf("mnist")
    options = {"root": str(mnist_root), "download": False}
    mnist_data = mnist.model_copy(update={"dataset": mnist.dataset.model_copy(update={"options": options})}).load()
    assert auto_cohort_size(exp, mnist_data, slots=2, gpu=False) == 1  # compute-bound on a CPU already
    big = exp.model_copy(update={"search": exp.search.model_copy(update={"num_samples": 512})})
    assert auto_cohort_size(big, mnist_data, slots=1, gpu=True) == 128
    assert auto_cohort_size(_exp(tmp_path), data, slots=2, gpu=False) == 4  # an explicit K is kept


def test_a_search_smaller_than_a_workers_start_uses_one_slot(tmp_path) -> None:
    """Every smoke search of a seed tutorial trains for less than a worker's start-up costs;
    a real search (the defaults) uses every slot."""
    for name in ("sign", "threshold_1d", "student_hours", "breast_cancer"):
        smoke = load_experiment(name, smoke=True)
        assert slots_worth_starting(smoke, dataset_conf(name).load(), slots=4) == 1, name
    data = dataset_conf("breast_cancer").load()
    assert slots_worth_starting(load_experiment("breast_cancer"), data, slots=4) == 4
    assert slots_worth_starting(load_experiment("sign"), dataset_conf("sign").load(), slots=4) == 4
