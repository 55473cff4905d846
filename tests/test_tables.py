"""Users' files read and checked: formats, labels, and one line for each way a file goes wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tunefleet.datasets import load_dataset
from tunefleet.errors import DataError


# ---- user files -------------------------------------------------------------------
def _write(tmp_path, frame: pd.DataFrame, name: str = "data.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def _rows(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(n) * 1.5, "b": np.arange(n) % 5, "y": np.arange(n) % 2})


def test_csv_string_labels_encoded(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30), "kind": ["cat", "dog", "eel"] * 10})
    ds = load_dataset("csv", {"path": str(_write(tmp_path, frame)), "target": "kind"})
    assert ds.class_labels == ("cat", "dog", "eel") and ds.feature_names == ("a", "b") and ds.task == "multiclass"
    assert [ds.class_labels[c] for c in ds.y[:3]] == ["cat", "dog", "eel"]


def test_parquet_numeric_labels(tmp_path) -> None:
    frame = pd.DataFrame({"x": np.arange(20.0), "y": [0, 1] * 10})
    ds = load_dataset("parquet", {"path": str(_write(tmp_path, frame, "d.parquet")), "target": "y"})
    assert ds.class_labels == (0, 1) and ds.X.shape == (20, 1)


@pytest.mark.parametrize(
    ("frame", "target", "message"),
    [
        (
            pd.DataFrame({"a": ["1.5"] * 9 + ["1,5"], "y": [0, 1] * 5}),
            "y",
            "'a' \\(numbers, but 1 cell.* of text, first '1,5' at data row 10: fix or drop those cells",
        ),
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, None, 0]}),
            "y",
            "target column 'y' .* 1 empty cell.*row 2; drop those rows",
        ),
        (pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}), "label", "target column 'label' not found.*columns are: a, y"),
        (pd.DataFrame({"a|y": ["1.0|0", "2.0|1"]}), "y", "not found .* looks '|'-separated: save it with commas"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1, 1, 1]}), "y", "single class"),
        (pd.DataFrame({"a": [1.0, np.inf, 3.0], "y": [0, 1, 0]}), "y", "column 'a' .* 1 infinite value.*row 2"),
        (pd.DataFrame({"a": [1.0, 2.0, -1e300], "y": [0, 1, 0]}), "y", "column 'a' .* 1 infinite .*float32.*row 3"),
        (
            pd.DataFrame({"a": np.arange(12.0), "y": np.linspace(0.5, 6.1, 12)}),
            "y",
            "target column 'y' .* 12 distinct non-integer numbers in 12 rows .* continuous .* bin this one",
        ),
        (pd.DataFrame({"a": [], "y": []}), "y", "0 data rows"),
    ],
)
def test_bad_user_files(tmp_path, frame, target, message) -> None:
    path = _write(tmp_path, frame)
    with pytest.raises(DataError, match=message) as err:
        load_dataset("csv", {"path": str(path), "target": target})
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_utf8_is_refused_naming_the_encoding(tmp_path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("café,y\n".encode("latin-1") + b"".join(f"{i},{i % 2}\n".encode() for i in range(12)))
    with pytest.raises(DataError, match=r"latin.csv is not UTF-8 text \(byte e9 at byte 3\); save it as CSV UTF-8"):
        load_dataset("csv", {"path": str(path), "target": "y"})


def test_empty_and_missing_files(tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_dataset("csv", {"path": str(empty), "target": "y"})
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("csv", {"path": str(tmp_path / "nope.csv"), "target": "y"})


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_a_column_name_twice_in_the_header_is_refused(tmp_path, suffix: str) -> None:
    """pandas renamed the second `a` to `a.1` without a word; a legitimate `a.1` beside `a` still loads."""
    sep = "," if suffix == ".csv" else ";"
    rows = "\n".join(sep.join([str(i), str(i * 2), str(i % 2)]) for i in range(12))
    twice = tmp_path / f"twice{suffix}"
    twice.write_text(sep.join(["a", "a", "y"]) + "\n" + rows)
    with pytest.raises(DataError, match=r"column 'a' appears 2 times in the header of .*; give each column its own"):
        load_dataset("csv", {"path": str(twice), "target": "y"})
    distinct = tmp_path / f"distinct{suffix}"
    distinct.write_text(sep.join(["a", "a.1", "y"]) + "\n" + rows)
    assert load_dataset("csv", {"path": str(distinct), "target": "y"}).feature_names == ("a", "a.1")


def test_a_folder_of_parquet_parts_is_one_table(tmp_path) -> None:
    """Spark and pyarrow write a table as a folder of parts (with a _SUCCESS marker, and
    sometimes subfolders); it loads as one table. A folder without parts is refused in one line."""
    from tunefleet.tables import loader_for_file

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30), "y": np.arange(30) % 2})
    folder = tmp_path / "table"
    (folder / "sub").mkdir(parents=True)
    frame.iloc[:12].to_parquet(folder / "part-0.parquet")
    frame.iloc[12:].to_parquet(folder / "sub" / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    assert loader_for_file(str(folder)) == "parquet"
    data = load_dataset("parquet", {"path": str(folder), "target": "y"})
    assert data.X.shape == (30, 2) and sorted(data.X[:, 0].tolist()) == sorted(frame["a"].astype(np.float32).tolist())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty is a folder without \.parquet files; pass a CSV or Parquet file"):
        load_dataset("parquet", {"path": str(empty), "target": "y"})


def test_predict_input_with_a_header_and_no_rows_is_refused(tmp_path) -> None:
    """It wrote a header, said "wrote 0 predictions" and exited 0."""
    from tunefleet.errors import TunefleetError
    from tunefleet.pipeline.predict import read_input

    path = tmp_path / "rows.csv"
    path.write_text("x\n")
    with pytest.raises(TunefleetError, match="has a header but no data rows; there is nothing to predict"):
        read_input(path)


@pytest.mark.parametrize(("suffix", "sep"), [(".tsv", "\t"), (".txt", ";"), (".csv", ",")])
def test_delimited_text_files_by_suffix(tmp_path, suffix: str, sep: str) -> None:
    from tunefleet.datasets import load_dataset
    from tunefleet.search.experiment import load_experiment

    path = tmp_path / f"rows{suffix}"
    path.write_text(
        sep.join(["a", "b", "y"]) + "\n" + "\n".join(sep.join([str(i), str(i * 2.5), str(i % 2)]) for i in range(10))
    )
    exp = load_experiment(data_file=str(path), target="y")
    data = load_dataset(exp.dataset.loader, exp.dataset.options)
    assert data.feature_names == ("a", "b") and data.X.shape == (10, 2) and data.X[3, 1] == 7.5


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda f, p: p.write_text("\n".join(",".join(map(str, r)) + "," for r in [list(f), *f.values.tolist()])),
            r"column 'Unnamed: 3' .* is empty in every row \(a separator at the end of every line makes one\); remove",
        ),
        (
            lambda f, p: f.to_csv(p),  # pandas' default keeps the index
            r"'Unnamed: 0' \(no name, and the row numbers 0\.\.11: an index saved with the file .* save the file",
        ),
        (
            lambda f, p: f.to_csv(p, header=False, index=False),
            r"first line .* holds numbers, not column names.* add a header row naming the columns",
        ),
        (
            lambda f, p: f.assign(b=f.a + 0.25).to_csv(p, header=False, index=False),
            r"target column 'y' not found .*; its first line holds numbers, not column names: add a header row",
        ),
        (
            lambda f, p: f.rename(columns={"y": " y"}).to_csv(p, index=False),
            r"target column 'y' not found .*; the header has ' y', with spaces: remove them there, or pass --target ' y'",
        ),
        (
            lambda f, p: f.assign(y=None).to_csv(p, index=False),
            r"target column 'y' .* is empty in every row; pass the column of labels with --target",
        ),
    ],
    ids=["trailing-separator", "saved-index", "no-header", "no-header-distinct", "spaced-header", "empty-target"],
)
def test_common_ways_a_csv_goes_wrong_are_named_with_their_fix(tmp_path, write, message) -> None:
    path = tmp_path / "rows.csv"
    write(_rows(), path)
    with pytest.raises(DataError, match=message) as err:
        load_dataset("csv", {"path": str(path), "target": "y"})
    assert "\n" not in str(err.value)


def test_an_unnamed_column_that_is_not_the_row_numbers_is_a_feature(tmp_path) -> None:
    path = tmp_path / "rows.csv"
    _rows().assign(b=np.arange(12)[::-1]).rename(columns={"b": ""}).to_csv(path, index=False)
    assert load_dataset("csv", {"path": str(path), "target": "y"}).feature_names == ("a", "Unnamed: 1")


@pytest.mark.parametrize(("name", "sep"), [("rows.csv.gz", ","), ("rows.tsv.bz2", "\t"), ("rows.csv.zip", ",")])
def test_compressed_text_files_load_and_keep_their_name(tmp_path, name: str, sep: str) -> None:
    from tunefleet.search.experiment import load_experiment

    path = tmp_path / name
    _rows().to_csv(path, sep=sep, index=False)
    exp = load_experiment(data_file=str(path), target="y")
    data = load_dataset(exp.dataset.loader, exp.dataset.options)
    assert exp.name == "rows" and data.feature_names == ("a", "b") and data.X[3, 0] == 4.5


def test_predictions_written_to_a_compressed_csv_read_back(tmp_path) -> None:
    from tunefleet.pipeline.predict import _write, check_output

    for name in ("pred.csv.gz", "pred.csv.zip", "pred.csv"):
        out = tmp_path / name
        _write(_rows(), out, check_output(out))
        assert pd.read_csv(out).equals(_rows()), name
    with pytest.raises(Exception, match=r"cannot tell the format of --output .*pred\.gz; use a \.csv \(or \.csv\.gz\)"):
        check_output(tmp_path / "pred.gz")


def test_parquet_decimal_columns_train_as_numbers(tmp_path) -> None:
    """A database's NUMERIC columns arrive in Parquet as DECIMAL, read by pandas as Decimal objects."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    amounts = [Decimal(f"{i * 1.25:.2f}") for i in range(12)]
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"amount": pa.array(amounts, pa.decimal128(8, 2)), "y": np.arange(12) % 2}), path)
    data = load_dataset("parquet", {"path": str(path), "target": "y"})
    assert data.feature_names == ("amount",) and data.X[:, 0].tolist() == [i * 1.25 for i in range(12)]
    pq.write_table(
        pa.table({"amount": pa.array([None, *amounts[1:]], pa.decimal128(8, 2)), "y": np.arange(12) % 2}), path
    )
    empty = load_dataset("parquet", {"path": str(path), "target": "y"})  # an empty cell: NaN, filled later
    assert np.isnan(empty.X[0, 0]) and empty.X[1:, 0].tolist() == [i * 1.25 for i in range(1, 12)]


def test_european_spreadsheet_files_read_as_their_numbers(tmp_path) -> None:
    """Excel's CSV where the comma is the decimal mark: ';'-separated, ``71,3``; a TSV with decimal commas too."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"weight": rng.normal(70, 10, 30).round(1), "grade": rng.integers(1, 4, 30)})
    frame["label"] = np.where(frame.weight > 70, "high", "low")
    plain = load_dataset("csv", {"path": str(_write(tmp_path, frame, "plain.csv")), "target": "label"})
    for name, sep in (("euro.csv", ";"), ("euro.tsv", "\t")):
        path = tmp_path / name
        frame.to_csv(path, sep=sep, decimal=",", index=False)
        assert "," in path.read_text().splitlines()[1]
        ds = load_dataset("csv", {"path": str(path), "target": "label"})
        assert ds.feature_names == ("weight", "grade") and np.array_equal(ds.X, plain.X) and ds.vocab == ()
    # in a comma-separated file a quoted "1,234" may be a thousands separator: never read as 1.234
    quoted = pd.DataFrame({"n": ["1,234", "2,500"] * 15, "label": ["a", "a", "b"] * 10})
    ds = load_dataset("csv", {"path": str(_write(tmp_path, quoted, "us.csv")), "target": "label"})
    assert ds.vocab == (("1,234", "2,500"),)
