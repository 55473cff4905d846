"""Text columns and empty cells in a user's file: indicators and fills, fitted on train only.

A model trained on them takes the raw values back at prediction time (a frame, row dicts
or an array of objects), empty cells included where its file had them; a level the
training rows never showed sets no indicator; numbers with typos and identifier-like
text columns are refused in one line.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tunefleet import ModelBundle, train_one
from tunefleet.datasets import load_dataset
from tunefleet.encoding import Column, Encoding
from tunefleet.errors import DataError
from tunefleet.evaluation import SplitScores, raw_features
from tunefleet.splits import SplitSpec, prepare_data, stratified_indices
from tunefleet.train_config import TrainConfig


def _shop(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A plan (3 levels) and a region (4 levels, one of them in the last row only) beside a number."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], n)
    region = rng.choice(["north", "south", "east"], n)
    region[-1] = "west"  # one row: where the split puts it decides whether train knows the level
    spend = rng.normal(50, 10, n).round(2)
    score = (plan == "pro") * 1.5 + (plan == "plus") * 0.5 + 0.02 * (spend - 50) + rng.normal(0, 0.5, n)
    return pd.DataFrame({"plan": plan, "spend": spend, "region": region, "churned": np.where(score > 0.6, "y", "n")})


def _load(tmp_path, frame: pd.DataFrame, target: str = "churned"):
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    return load_dataset("csv", {"path": str(path), "target": target})


def test_text_columns_become_indicators_fitted_on_the_training_rows(tmp_path) -> None:
    ds = _load(tmp_path, _shop())
    assert ds.feature_names == ("plan", "spend", "region")
    assert ds.vocab == (("basic", "plus", "pro"), None, ("east", "north", "south", "west"))
    spec = SplitSpec()  # seed 0 puts the one "west" row in test
    data = prepare_data(ds, spec)
    train_rows, _, test_rows = stratified_indices(ds.y, (spec.train, spec.val, spec.test), spec.seed)
    plan, spend, region = data.encoding.columns
    seen = set(region.levels or ())
    assert seen == set(_shop()["region"].to_numpy()[train_rows]) == {"east", "north", "south"}
    # the test row of a level train never showed sets none of its column's indicators
    west = int(np.flatnonzero(test_rows == len(ds.y) - 1)[0])
    region_block = data.X_test[:, 4:] * data.scaler.scale[4:] + data.scaler.mean[4:]
    assert np.allclose(region_block[west], 0.0, atol=1e-5) and raw_features(data, "test")["region"][west] == "(unseen)"
    assert plan.levels == ("basic", "plus", "pro") and spend.levels is None and not spend.empty
    assert data.n_features == 3 + 1 + len(seen) == data.encoding.width
    # the levels are exactly those of the training rows (the raw train rows decode to them)
    assert set(raw_features(data, "train")["region"]) == seen
    # each row sets one indicator per text column, or none for a level train never showed
    plan_block = data.X_train[:, :3] * data.scaler.scale[:3] + data.scaler.mean[:3]
    assert np.allclose(plan_block.sum(axis=1), 1.0, atol=1e-5)


def test_a_level_train_never_showed_sets_no_indicator() -> None:
    enc = Encoding((Column("plan", ("basic", "pro")), Column("spend")))
    got = enc.expand([np.array(["pro", "gold", "basic"], dtype=object), np.array([1.0, 2.0, 3.0])])
    assert got.tolist() == [[0, 1, 1], [0, 0, 2], [1, 0, 3]]
    back = enc.decode(got)
    assert back[0].tolist() == ["pro", "(unseen)", "basic"] and np.array_equal(enc.expand(back), got)
    assert Encoding.from_json(json.loads(json.dumps(enc.to_json()))) == enc


def test_the_split_hash_follows_the_words_not_only_their_codes(tmp_path) -> None:
    frame = _shop()
    renamed = frame.assign(region=frame["region"].map({"north": "N", "south": "S", "east": "E", "west": "W"}))
    first = prepare_data(_load(tmp_path, frame), SplitSpec()).split_hash
    assert prepare_data(_load(tmp_path, renamed), SplitSpec()).split_hash != first


def test_a_bundle_takes_the_raw_text_back(tmp_path) -> None:
    frame = _shop()
    data = prepare_data(_load(tmp_path, frame), SplitSpec())
    bundle = train_one(TrainConfig(epochs=20, hidden_widths=(8,), seed=0), data).bundle
    test = SplitScores.of(bundle, data, "test")
    assert isinstance(test.X, pd.DataFrame) and list(test.X.columns) == ["plan", "spend", "region"]
    # the model's inputs from the raw rows equal the split's prepared arrays
    scaled = (bundle.as_matrix(test.X) - bundle.only.scaler_mean) / bundle.only.scaler_scale
    assert np.allclose(scaled, data.X_test, atol=1e-5)
    # the file's own rows, as a frame (label still in it), row dicts and an object array in training order
    rows = frame.head(6)
    expected = bundle.predict_proba(rows)
    assert np.allclose(bundle.predict_proba(rows.drop(columns="churned").to_dict("records")), expected)
    assert np.allclose(bundle.predict_proba(rows[["plan", "spend", "region"]].to_numpy(dtype=object)), expected)
    # saved and loaded, the levels come back with it
    loaded = ModelBundle.load(bundle.save(tmp_path / "b"))
    assert loaded.only.encoding == bundle.only.encoding and np.array_equal(loaded.predict_proba(rows), expected)
    saved = json.loads((tmp_path / "b" / "bundle.json").read_text())["members"][0]["encoding"]
    assert saved[0] == {
        "name": "plan",
        "levels": ["basic", "plus", "pro"],
        "empty": False,
        "fill": 0.0,
        "optional": False,
    }
    # an empty text cell, where the file had none, is one line naming the column
    with pytest.raises(DataError, match=r"missing or infinite values .* in column\(s\) 'region'"):
        bundle.predict(rows.assign(region=[None, "north", "south", "east", "north", "south"]))


def test_a_numeric_bundle_saves_no_levels(tmp_path, breast_cancer_data) -> None:
    bundle = train_one(TrainConfig(epochs=1, seed=0), breast_cancer_data).bundle
    assert bundle.only.encoding is None and bundle.only.n_features == 30
    assert "encoding" not in json.loads((bundle.save(tmp_path / "b") / "bundle.json").read_text())["members"][0]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            ["12.5"] * 25 + ["12,5"] + ["3"] * 4,
            r"'x' \(numbers, but 1 cell\(s\) of text, first '12,5' at data row 26: fix or drop those cells\); leave",
        ),
        (
            [f"Passenger {i}" for i in range(30)],
            r"1 feature column\(s\) of .* cannot train: 'x' \(30 different values in 30 rows: .*identifiers.*\); "
            r"leave it out with --set 'dataset.options.exclude=\[\"x\"\]'",
        ),
        (
            [f"zip {i % 101}" for i in range(303)],
            r"'x' \(101 different values in 303 rows: .* more categories than 100",
        ),
    ],
)
def test_text_that_cannot_be_categories_is_refused(tmp_path, column, message) -> None:
    frame = pd.DataFrame({"x": column, "a": np.arange(float(len(column))), "y": [0, 1, 2] * (len(column) // 3)})
    with pytest.raises(DataError, match=message) as err:
        _load(tmp_path, frame, target="y")
    assert "\n" not in str(err.value)


def test_a_date_column_is_refused_naming_what_to_do() -> None:
    from tunefleet.datasets import table_to_dataset

    frame = pd.DataFrame({"laid": pd.date_range("2007-11-11", periods=12), "a": np.arange(12.0), "y": [0, 1] * 6})
    message = r"""of eggs.parquet cannot train: 'laid' \(dates, datetime64\[.s\]: .*a year.*'dataset.options.exclude=\["laid"\]'"""
    with pytest.raises(DataError, match=message):
        table_to_dataset(frame, "y", "eggs.parquet")
    for written, first in (("%Y-%m-%d", "2007-11-11"), ("%m/%d/%Y", "11/11/2007"), ("%d.%m.%Y", "11.11.2007")):
        as_text = frame.assign(laid=frame["laid"].dt.strftime(written))  # a CSV's dates
        with pytest.raises(
            DataError, match=rf"of eggs.csv cannot train: 'laid' \(dates as text, e.g. '{first}'.*a year"
        ):
            table_to_dataset(as_text, "y", "eggs.csv")


def test_numbers_held_as_objects_are_numbers_and_a_category_column_is_categories() -> None:
    """A database's Python ints arrive as an object column: numbers. pandas' ``category`` dtype
    declares categories, even of numbers (postcodes): indicators, one per level."""
    from tunefleet.datasets import table_to_dataset

    frame = pd.DataFrame(
        {
            "visits": pd.Series([3, 1, 4, 1, 5, 9] * 5, dtype=object),
            "postcode": pd.Categorical([10115, 20095, 80331] * 10),
            "season": pd.Categorical([2019, 2020, 2021, 2022, 2023] * 6),  # years as categories, not dates
            "y": [0, 1] * 15,
        }
    )
    ds = table_to_dataset(frame, "y", "mem.parquet")
    assert ds.vocab == (None, ("10115", "20095", "80331"), ("2019", "2020", "2021", "2022", "2023"))
    assert ds.X[:6, 0].tolist() == [3, 1, 4, 1, 5, 9]


def test_empty_cells_are_filled_with_the_training_median_and_flagged(tmp_path) -> None:
    frame = _shop()
    frame.loc[::7, "spend"] = np.nan  # 35 empty numbers
    frame.loc[::11, "plan"] = None  # 22 empty text cells
    ds = _load(tmp_path, frame)
    spec = SplitSpec()
    data = prepare_data(ds, spec)
    plan, spend, region = data.encoding.columns
    train_rows, *_ = stratified_indices(ds.y, (spec.train, spec.val, spec.test), spec.seed)
    assert spend.empty and spend.fill == pytest.approx(np.nanmedian(frame["spend"].to_numpy()[train_rows]))
    assert plan.empty and plan.levels == ("(empty)", "basic", "plus", "pro") and not region.empty
    assert not np.isnan(data.X_train).any() and data.n_features == 4 + 2 + len(region.levels or ())
    # the raw rows decode with their empty cells, and a bundle maps them back to the same inputs
    bundle = train_one(TrainConfig(epochs=5, hidden_widths=(8,), seed=0), data).bundle
    raw = raw_features(data, "test")
    assert raw["spend"].isna().any() and raw["plan"].isna().any()
    scaled = (bundle.as_matrix(raw) - bundle.only.scaler_mean) / bundle.only.scaler_scale
    assert np.allclose(scaled, data.X_test, atol=1e-5)
    # a prediction takes empty cells where the file had them, from the raw file itself
    assert len(bundle.predict(frame.head(12))) == 12
    loaded = ModelBundle.load(bundle.save(tmp_path / "b"))
    assert np.array_equal(loaded.predict_proba(frame.head(12)), bundle.predict_proba(frame.head(12)))


def test_empty_cells_in_the_label_are_refused(tmp_path) -> None:
    frame = _shop().astype({"churned": object})
    frame.loc[5, "churned"] = None
    with pytest.raises(DataError, match=r"target column 'churned' .* 1 empty cell\(s\), first at data row 6; drop"):
        _load(tmp_path, frame)


def test_the_start_line_says_what_became_of_text_and_empty_cells(tmp_path, capsys) -> None:
    from types import SimpleNamespace

    from tunefleet.search.result import ProgressPrinter

    frame = _shop()
    frame.loc[::7, "spend"] = np.nan
    data = prepare_data(_load(tmp_path, frame), SplitSpec())
    ProgressPrinter("val_loss", "min", 4).on_search_start(SimpleNamespace(name="shop"), data, "s", tmp_path, False)
    line = capsys.readouterr().out
    assert "; text column(s) plan, region as 6 indicator inputs (levels seen in train)" in line
    assert "; empty cells in spend filled with the train median and flagged by an indicator" in line


def test_every_identifier_like_column_is_named_at_once_and_exclude_leaves_them_out(tmp_path) -> None:
    frame = _shop().assign(name=[f"Customer {i}" for i in range(240)], ticket=[f"T{i % 150}" for i in range(240)])
    message = (
        r"""2 feature column\(s\) .*'name' \(240 different values in 240 rows.*'ticket' \(150 different values .*; """
        r"""leave them out with --set 'dataset.options.exclude=\["name", "ticket"\]'$"""
    )
    with pytest.raises(DataError, match=message):
        _load(tmp_path, frame)
    frame.to_csv(tmp_path / "shop.csv", index=False)
    ds = load_dataset("csv", {"path": str(tmp_path / "shop.csv"), "target": "churned", "exclude": ["name", "ticket"]})
    assert ds.feature_names == ("plan", "spend", "region")
    with pytest.raises(DataError, match=r"column 'nmae' of dataset.options.exclude not found in .*columns are: plan"):
        load_dataset("csv", {"path": str(tmp_path / "shop.csv"), "target": "churned", "exclude": ["nmae"]})


def test_a_key_column_is_named_with_the_exclude_that_leaves_it_out(tmp_path) -> None:
    """A different whole number in every row, under an identifier's name: a model would learn the file's order."""
    frame = _shop().assign(customerId=np.arange(240) + 5000, visits=np.arange(240) % 7)
    with pytest.raises(
        DataError, match=r"'customerId' \(a different whole number in every row.*exclude=\[\"customerId\"\]"
    ):
        _load(tmp_path, frame)
    frame = frame.assign(customerId=np.arange(240) % 50)  # repeated: a customer seen several times, a feature
    assert "customerId" in _load(tmp_path, frame).feature_names


def test_a_recoded_copy_of_the_label_is_refused(tmp_path) -> None:
    """A column that is the target in other words (0/1 for n/y) gives a perfect, useless model."""
    frame = _shop()
    frame["churn_flag"] = (frame["churned"] == "y").astype(int)
    with pytest.raises(DataError, match=r"'churn_flag' \(the target in other words.*exclude=\[\"churn_flag\"\]"):
        _load(tmp_path, frame)
    frame.loc[0, "churn_flag"] = 1 - frame.loc[0, "churn_flag"]  # one row differs: a (leaky) feature, not a copy
    assert "churn_flag" in _load(tmp_path, frame).feature_names
