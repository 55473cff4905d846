"""The cohort backend in one process: every member a trial, ASHA per member, TPE sees all, auto K, resume."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest

from search import load_experiment, run_search
from search.cohort_backend import auto_cohort_size, slots_worth_starting
from search.resume import latest_name, new_name
from search.rungs import RungTable, rung_epochs
from search.study import load_records
from tunefleet.catalog import dataset_conf
from tunefleet.errors import TunefleetError


def _exp(tmp_path, **values):
    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    return load_experiment("breast_cancer", smoke=True, values={**base, **values})


def test_rung_table_follows_ashas_rule() -> None:
    """Ray's ASHA: the cutoff is the (1 - 1/eta) percentile of the values recorded before this one."""
    assert rung_epochs(2, 3, 40) == (2, 6, 18)
    table = RungTable((2, 6), reduction_factor=2, mode="max")
    assert table.judge("a", 2, 0.5) is False  # first at the rung: nothing to compare with
    assert table.judge("b", 2, 0.4) is True  # below the median of [0.5]
    assert table.judge("c", 2, 0.9) is False
    assert table.judge("d", 3, 0.0) is False  # not a rung
    assert table.judge("b", 2, 0.95) is False  # a retried member replaces its value, it does not add one
    assert table.values[2] == {"a": 0.5, "b": 0.95, "c": 0.9}
    low = RungTable((2,), reduction_factor=2, mode="min")
    low.judge("a", 2, 0.5)
    assert low.judge("b", 2, 0.7) is True and low.judge("c", 2, 0.1) is False


def test_every_member_is_a_trial_and_asha_stops_weak_members_mid_cohort(tmp_path) -> None:
    exp = _exp(
        tmp_path,
        **{"search.num_samples": 12, "search.scheduler.grace_period": 2, "search.scheduler.reduction_factor": 2},
    )
    exp = exp.model_copy(
        update={
            "space": exp.space.model_copy(update={"epochs": exp.space.epochs.model_copy(update={"low": 8, "high": 12})})
        }
    )
    result = run_search(exp, progress=False)
    assert len(result.trials) == 12 and len({t.trial_id for t in result.trials}) == 12
    cohorts: dict[str, list] = {}
    for trial in result.trials:
        cohorts.setdefault(trial.cohort, []).append(trial)
    assert len(cohorts) >= 3  # 12 trials asked 4 at a time, split by layer count and optimizer
    rungs = set(rung_epochs(2, 2, 12))
    stopped = [t for t in result.trials if t.status == "stopped"]
    assert stopped, "ASHA stopped no member"
    for trial in stopped:
        assert len(trial.history) in rungs and len(trial.history) < trial.config.epochs  # stopped at a rung
    # a weak member stopped at a rung while a mate of its cohort went on past it
    assert any(any(len(mate.history) > len(t.history) for mate in cohorts[t.cohort] if mate is not t) for t in stopped)
    finished = [t for t in result.trials if t.status == "finished"]
    assert finished and all(t.bundle_dir and len(t.history) == t.metrics["epochs_run"] for t in finished)
    assert result.best in finished and result.best_bundle is not None
    # the sampler saw every member: one told trial per member, pruned for the stopped ones
    import optuna

    from search.study import open_study

    study = open_study(exp, result.path)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(stopped)
    assert states.count(optuna.trial.TrialState.COMPLETE) == len(finished)


def test_members_of_one_ask_differ(tmp_path) -> None:
    """Constant liar: the K configs asked before any is told are not copies of one another."""
    result = run_search(_exp(tmp_path, **{"search.num_samples": 8, "search.scheduler.name": "none"}), progress=False)
    lrs = [t.params["lr"] for t in result.trials]
    assert len(set(lrs)) == 8


class Seen:
    """An observer that remembers which trials it heard of."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def on_search_start(self, *args, **kwargs) -> None:
        pass

    def on_trial_end(self, record) -> None:
        self.ids.append(record.trial_id)


def test_resume_runs_only_what_is_missing(tmp_path) -> None:
    exp = _exp(tmp_path, **{"search.num_samples": 6, "search.scheduler.name": "none"})
    first = run_search(exp, name="resumable", progress=False)
    records = sorted(load_records(first.path), key=lambda r: r.trial_id)
    for record in records[3:]:  # as if the driver died after 3 members had ended
        (first.path / "trials" / f"{record.trial_id}.json").unlink()
    bigger = exp.model_copy(update={"search": exp.search.model_copy(update={"num_samples": 8})})
    seen = Seen()
    again = run_search(bigger, name="resumable", resume=True, progress=False, observers=[seen])
    assert len(again.trials) == 8 and len({t.trial_id for t in again.trials}) == 8
    # the 3 kept records are told again: one saved just before a kill may never have reached MLflow
    assert sorted(seen.ids) == sorted(t.trial_id for t in again.trials)
    kept = {r.trial_id: json.loads(r.to_json()) for r in records[:3]}
    assert all(json.loads(t.to_json()) == kept[t.trial_id] for t in again.trials if t.trial_id in kept)
    with pytest.raises(TunefleetError, match="a search named resumable already exists .* pass --resume"):
        run_search(exp, name="resumable", progress=False)  # never merged into the earlier search's state


def test_resume_refuses_another_search_before_anything_starts(tmp_path) -> None:
    """``--resume`` without the ``--smoke`` a search started with (another space) is refused in
    one line naming the first key that differs, as is a resume on other data (another split
    hash) and a name that left no state."""
    from search.resume import SPEC_FILE, resolve_search

    smoke = _exp(tmp_path, **{"search.num_samples": 2, "search.scheduler.name": "none"})
    first = run_search(smoke, name="breast_cancer-started", progress=False)
    assert (first.path / SPEC_FILE).is_file()
    split = first.data.split_hash
    assert resolve_search(smoke, "breast_cancer-started", True, split) == "breast_cancer-started"  # the same search
    assert resolve_search(smoke, None, True, split) == "breast_cancer-started"  # the latest one
    with pytest.raises(TunefleetError, match='it started with split_hash="[0-9a-f]+", this command has "other"'):
        resolve_search(smoke, "breast_cancer-started", True, "other")  # other rows under the same names
    saved = json.loads((first.path / SPEC_FILE).read_text())
    (first.path / SPEC_FILE).write_text(json.dumps({k: v for k, v in saved.items() if k != "split_hash"}))
    assert resolve_search(smoke, "breast_cancer-started", True, "other")  # an older file, without the key: no refusal
    (first.path / SPEC_FILE).write_text(json.dumps(saved))
    same = {"search.backend": "optuna", "search.storage_path": str(tmp_path), "search.cohort_size": 4}
    full = load_experiment("breast_cancer", values={**same, "search.scheduler.name": "none"})
    with pytest.raises(
        TunefleetError, match=r"cannot resume breast_cancer-started: it started with space\.\S+=.*--smoke"
    ) as err:
        resolve_search(full, "breast_cancer-started", True, split)
    assert "\n" not in str(err.value)
    tune = smoke.model_copy(update={"search": smoke.search.model_copy(update={"backend": "ray", "cohort_size": 1})})
    with pytest.raises(TunefleetError, match='it started with search.backend="optuna", this command has "ray"'):
        resolve_search(tune, "breast_cancer-started", True, split)  # the reason, not "no ray search state"
    with pytest.raises(TunefleetError, match="cannot resume nosuch: no optuna search state"):
        resolve_search(smoke, "nosuch", True, split)


def test_searches_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch) -> None:
    """The default name has one-second resolution; a scripted second search must not resume the first."""
    monkeypatch.setattr("search.resume.time.strftime", lambda fmt: "20261122-120000")
    exp = _exp(tmp_path)
    names = [new_name(exp) for _ in range(3)]  # each call claims its directory: searches started together
    assert all((tmp_path / name).is_dir() for name in names)  # took the same name before either made it
    assert names == [
        "breast_cancer-20261122-120000",
        "breast_cancer-20261122-120000-2",
        "breast_cancer-20261122-120000-3",
    ]
    (tmp_path / names[0] / "search_spec.json").write_text("{}")  # only the first wrote anything
    os.utime(tmp_path / names[2], (time.time() + 60, time.time() + 60))  # the newest, but empty
    assert latest_name(exp) == names[0]  # --resume passes over names claimed by searches that failed at once


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


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"search.cohort_size": 0}, "cohort_size must be at least 1"),
        ({"search.cohort_size": 4, "search.scheduler.name": "median"}, "cohorts stop members with ASHA"),
    ],
)
def test_bad_cohort_settings_are_one_line_errors(tmp_path, values, message) -> None:
    from tunefleet.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _exp(tmp_path, **values)


def test_a_cuda_device_without_a_gpu_for_its_trials_is_refused_before_they_start() -> None:
    """Every trial failed with torch's "Found no NVIDIA driver", and only then did the search end."""
    import torch

    from search.cluster import check_resources
    from search.optuna_backend import local_gpu

    cuda = load_experiment("sign", values={"train.device": "cuda"})
    with pytest.raises(TunefleetError, match="train.device is cuda, but trials hold no GPU .* pass --gpus-per-trial"):
        check_resources(cuda, {"CPU": 2.0, "GPU": 1.0})  # Ray hides the GPUs from a trial that asks for none
    with_gpus = load_experiment("sign", values={"train.device": "cuda", "search.resources.gpus_per_trial": 0.5})
    assert check_resources(with_gpus, {"CPU": 2.0, "GPU": 1.0}) == 2
    if not torch.cuda.is_available():
        with pytest.raises(
            TunefleetError, match="train.device is cuda, but this machine has no GPU that torch can use"
        ):
            local_gpu(cuda)
    assert local_gpu(load_experiment("sign")) == torch.cuda.is_available()


def test_driver_choice() -> None:
    def driver(**values) -> str:
        return load_experiment("sign", values=values).search.driver

    assert driver() == "cohort"  # auto
    assert driver(**{"search.cohort_size": 1}) == "ray"
    assert driver(**{"search.cohort_size": 1, "search.backend": "optuna"}) == "optuna"
    assert driver(**{"search.scheduler.name": "median"}) == "ray"  # auto leaves the median rule to Tune


def test_importance_ranks_the_parameter_that_decides_the_metric(tmp_path) -> None:
    """Records whose validation metric depends on lr alone: both evaluators rank lr first."""
    import numpy as np
    import optuna

    from search.importance import importances, replay_study
    from search.result import TrialRecord
    from search.space import sampler_for

    exp = _exp(tmp_path, **{"search.cohort_size": 1})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    records = []
    for i in range(30):
        trial = study.ask()
        sampler_for(exp, "binary")(trial)
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
