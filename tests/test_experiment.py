"""Search-space files: loading, overrides, and one-line errors for every bad case."""

from __future__ import annotations

import pytest

from tests.cases import sample_params
from tunefleet.catalog import catalog_names
from tunefleet.errors import ConfigError
from tunefleet.pipeline.cli import build_parser
from tunefleet.pipeline.commands import flag_values
from tunefleet.search.experiment import load_experiment

LOADERS = {
    "breast_cancer": "breast_cancer",
    "mnist": "mnist",
    "sign": "sign",
    "student_hours": "student_hours",
    "threshold_1d": "threshold_1d",
}


def test_the_catalog_is_the_dataset_files() -> None:
    assert catalog_names() == sorted(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_dataset_file_loads(name: str) -> None:
    exp = load_experiment(name)
    assert exp.name == name and exp.dataset.loader == LOADERS[name] and exp.search.num_samples == 24


def test_dataset_file_overrides_defaults() -> None:
    bc, mnist = load_experiment("breast_cancer"), load_experiment("mnist")
    assert (bc.metric, bc.mode) == ("val_roc_auc", "max") and (mnist.metric, mnist.mode) == ("val_accuracy", "max")
    assert mnist.search.scheduler.grace_period == 2 and mnist.search.scheduler.reduction_factor == 3  # merged
    assert mnist.space.batch_size.values == [64, 128, 256] and mnist.space.lr == bc.space.lr


def test_overrides_and_smoke() -> None:
    exp = load_experiment(
        "breast_cancer", overrides=["search.num_samples=64", "space.lr.high=0.5", "space.batch_size.values=[8, 16]"]
    )
    assert exp.search.num_samples == 64 and exp.space.lr.high == 0.5 and exp.space.batch_size.values == [8, 16]
    smoke = load_experiment("breast_cancer", smoke=True)
    assert smoke.search.num_samples == 4 and smoke.space.max_epochs() <= 6


def test_user_file_gets_defaults(tmp_path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("a,b,y\n1,2,0\n")
    exp = load_experiment(data_file=str(path), target="y")
    assert (
        exp.name == "mine" and exp.dataset.loader == "csv" and exp.dataset.options == {"path": str(path), "target": "y"}
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("space.lrr={type: uniform, low: 0, high: 1}", r"space\.lrr: unknown key"),
        ("search.num_sample=3", r"search\.num_sample: unknown key"),
        ("search.num_samples=lots", r"search\.num_samples: Input should be a valid integer"),
        ("space.lr.low=0.9", r"space\.lr: .*low \(0\.9\) is above high \(0\.03\)"),
        ("space.batch_size.values=[]", r"space\.batch_size: .*non-empty 'values'"),
        ("metric=val_accuracyy", r"metric 'val_accuracyy' is never reported"),
        ("space.lr.type=normal", r"space\.lr\.type: Input should be 'loguniform'"),
        ("train.lr=0.1", r"train\.lr is searched"),
        ("train.pateince=3", r"train\.pateince: unknown key"),
        ("search.scheduler.name=hyperband", r"search\.scheduler\.name"),
        ("nonsense", r"must look like key\.path=value"),
        # values a trial's TrainConfig would refuse: refused here, before Ray starts (they were
        # tracebacks from the cohorts' sizing, or one failed trial after another)
        (
            "space.batch_size.values=[0, 8]",
            r"batch_size: this space gives it 0, which a trial refuses \(.*greater than or equal to 1\)$",
        ),
        (
            "space.batch_size.values=[a]",
            r"batch_size: this space gives it 'a', which a trial refuses \(.*valid integer.*\)$",
        ),
        (
            "space.width.values=[8, 0.5]",
            r"width: this space gives it 0\.5, which a trial refuses \(.*valid integer.*\)$",
        ),
        ("space.width.values=[8, 0]", r"width: this space gives it 0, which a trial refuses \(.*greater than 0\)$"),
        ("space.momentum.high=1.5", r"momentum: this space gives it 1\.5, which a trial refuses \(.*less than 1\)$"),
        (
            "space.optimizer.values=[rmsprop]",
            r"optimizer: this space gives it 'rmsprop', which a trial refuses \(.*'sgd' or 'adam'\)$",
        ),
        (
            "space.epochs={type: int, low: 0, high: 5}",
            r"epochs: this space gives it 0, which a trial refuses \(.*greater than or equal to 1\)$",
        ),
        (
            "space.n_layers.low=-1",
            r"n_layers: this space gives it -1, which a trial refuses \(.*greater than or equal to 0\)$",
        ),
        ("space.threshold.low=0", r"threshold: this space gives it 0, which a trial refuses \(.*greater than 0\)$"),
    ],
)
def test_bad_search_space_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_experiment("breast_cancer", overrides=[override])
    assert "\n" not in str(err.value)


def test_metric_checked_against_task() -> None:
    exp = load_experiment("mnist", overrides=["metric=val_roc_auc"])
    with pytest.raises(ConfigError, match="metric: 'val_roc_auc' is not reported for multiclass"):
        exp.check_task("multiclass")


def test_unknown_dataset_and_missing_target() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'iris'.*known: breast_cancer"):
        load_experiment("iris")
    with pytest.raises(ConfigError, match="--data needs --target"):
        load_experiment(data_file="x.csv")


def test_typed_flags_are_set_as_they_are_not_reparsed() -> None:
    args = build_parser().parse_args(
        ["search", "sign", "--storage-path", "2024", "--trials", "3", "--set", "search.seed=7"]
    )
    exp = load_experiment("sign", overrides=args.overrides, values=flag_values(args))
    assert exp.search.storage_path == "2024" and exp.search.num_samples == 3 and exp.search.seed == 7


def test_every_scheduler_is_a_flag_the_default_included() -> None:
    """--scheduler offered asha, median and none, but not sh, the default the README names."""
    import typing

    from tunefleet.search.experiment import SchedulerConfig

    names = typing.get_args(SchedulerConfig.model_fields["name"].annotation)
    for name in names:
        args = build_parser().parse_args(["search", "sign", "--scheduler", name])
        assert load_experiment("sign", values=flag_values(args)).search.scheduler.name == name


def test_trial_config_carries_the_fixed_train_settings() -> None:
    exp = load_experiment("breast_cancer", overrides=["train.patience=4", "search.resources.cpus_per_trial=2"])
    params = sample_params(exp, 1)[0]
    cfg = exp.trial_config(params)
    assert cfg.patience == 4 and cfg.torch_threads == 2 and cfg.threshold.objective == exp.threshold.objective


def test_a_user_files_spec_error_names_the_file_and_the_problem_only(tmp_path) -> None:
    """It named conf/datasets/rows.yaml, which does not exist, and said "<root>: Value error, ..."."""
    path = tmp_path / "rows.csv"
    path.write_text("a,y\n" + "\n".join(f"{i},{i % 2}" for i in range(12)))
    with pytest.raises(ConfigError) as err:
        load_experiment(
            data_file=str(path), target="y", values={"search.scheduler.name": "median", "search.cohort_size": 4}
        )
    assert str(err.value).startswith(
        f"--data {path} (merged with conf/search.yaml and overrides): search: cohorts judge"
    )
    assert "Value error" not in str(err.value) and "<root>" not in str(err.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"search.cohort_size": 0}, "cohort_size must be at least 1"),
        ({"search.cohort_size": 4, "search.scheduler.name": "median"}, "cohorts judge trials at rungs"),
    ],
)
def test_bad_cohort_settings_are_one_line_errors(tmp_path, values, message) -> None:
    from tunefleet.errors import ConfigError

    base = {"search.backend": "optuna", "search.storage_path": str(tmp_path)}
    with pytest.raises(ConfigError, match=message):
        load_experiment("breast_cancer", smoke=True, values={**base, **values})


def test_cohorts_unless_one_trial_each_the_median_rule_or_cross_validation() -> None:
    def in_cohorts(**values) -> bool:
        return load_experiment("sign", values=values).in_cohorts

    assert in_cohorts()  # auto
    assert not in_cohorts(**{"search.cohort_size": 1})
    assert not in_cohorts(**{"search.scheduler.name": "median"})  # auto leaves the median rule to the backend's loop
    assert in_cohorts(**{"split.cv_folds": 3})  # a CV trial's folds are members of one cohort
    assert in_cohorts(**{"search.cohort_size": 4, "search.backend": "optuna"})
