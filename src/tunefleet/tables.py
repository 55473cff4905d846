"""Users' CSV, TSV and Parquet files: read, then checked once, each problem one line naming its fix.

Text feature columns are categories and empty feature cells are filled
(:mod:`tunefleet.encoding`). What a file can hold that training cannot use (a missing or
empty file, a target column that is not there or has empty cells, a column empty in every
row, numbers with typos, columns no model can learn from (identifiers, dates, keys, the
label recoded: :mod:`tunefleet.table_columns`), infinite values, a single class, a
continuous target, the target listed as a feature) is refused here, before anything slow
starts, as a :class:`~tunefleet.errors.DataError`. numpy and, on first use, pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tunefleet.encoding import Levels
from tunefleet.errors import DataError, first_line
from tunefleet.table_columns import as_numbers, coded_columns, decimal_commas, leave_out

# delimiter by suffix: tabs for .tsv, sniffed for .txt, commas otherwise
TEXT_READERS: dict[str, dict[str, Any]] = {".tsv": {"sep": "\t"}, ".txt": {"sep": None, "engine": "python"}}
TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
# what pandas (de)compresses by suffix with the libraries installed here (.zst needs zstandard)
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}


def format_suffix(path: Path) -> str:
    """A file's format suffix, under a compression suffix if it has one: ``.csv`` for ``x.csv.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSIONS and suffixes[-2] in TEXT_SUFFIXES:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def compression_of(path: Path) -> str | dict[str, str] | None:
    """How to compress a text file written to ``path`` (pandas' ``compression``), from its suffix.

    Given explicitly because tables are written to a temporary name first, whose suffix
    pandas would infer nothing from; a zip's one member is named as the file without ``.zip``.
    """
    method = COMPRESSIONS.get(path.suffix.lower()) if format_suffix(path) in TEXT_SUFFIXES else None
    return {"method": "zip", "archive_name": path.stem} if method == "zip" else method


def table_stem(path: Path) -> str:
    """A table's name without its format and compression suffixes (``clinic`` for ``clinic.csv.gz``)."""
    compressed = path.suffix.lower() in COMPRESSIONS and format_suffix(path) in TEXT_SUFFIXES
    return Path(path.stem).stem if compressed else path.stem


def check_data_path(path: Path, flag: str = "--data", role: str = "data file") -> None:
    """A file, or a folder of Parquet files (as Spark and pyarrow write a table in parts); else one line."""
    if not path.exists():
        raise DataError(f"{role} {path} does not exist; check the path passed with {flag}")
    if path.is_dir() and not _parquet_parts(path):
        raise DataError(f"{path} is a folder without .parquet files; pass a CSV or Parquet file with {flag}")


def _parquet_parts(folder: Path) -> bool:
    return any(folder.rglob("*.parquet"))


def read_table(path: Path, kind: str) -> Any:
    """Read a CSV or Parquet file, or a folder of Parquet parts; a missing, empty or unreadable one is a one-line DataError."""
    import pandas as pd

    check_data_path(path)
    try:
        if kind == "parquet":
            return _decimals_as_floats(pd.read_parquet(path))
        readers = TEXT_READERS.get(format_suffix(path), {})
        frame = pd.read_csv(path, **readers)
        if not readers and len(frame.columns) == 1 and ";" in str(frame.columns[0]):
            readers = {"sep": ";"}  # Excel's CSV where the comma is the decimal mark
            frame = pd.read_csv(path, **readers)
        _check_unique_header(path, frame.columns, readers)
        return decimal_commas(frame) if readers.get("sep") in (";", "\t") else frame
    except DataError:
        raise
    except UnicodeDecodeError as err:  # Excel's "CSV" on Windows is often cp1252
        raise DataError(
            f"{path} is not UTF-8 text (byte {err.object[err.start : err.start + 1].hex()} at byte {err.start}); "
            "save it as CSV UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty; it needs a header row and at least one data row") from None
    except Exception as err:  # noqa: BLE001 - any reader failure becomes one line
        raise DataError(f"could not read {path} as {kind} ({type(err).__name__}: {first_line(err, 1000)})") from None


def _decimals_as_floats(frame: Any) -> Any:
    """Parquet's DECIMAL columns (a database's NUMERIC, exported) as float64, so they train as numbers.

    pandas reads them as Python ``Decimal`` objects, which the feature check would call text;
    :func:`~tunefleet.table_columns.as_numbers` turns any column of numbers held as objects into numbers.
    """
    for col in frame.select_dtypes(include="object").columns:
        frame[col] = as_numbers(frame[col])
    return frame


def _check_unique_header(path: Path, columns: Any, readers: dict[str, Any]) -> None:
    """No column name twice in a text file's header.

    pandas reads a second ``a`` as ``a.1`` without a word; a model trained on it would then
    ask every input for an ``a.1`` column. The header is read again, unrenamed, only when a
    name looks renamed (``X.N`` beside ``X``).
    """
    import pandas as pd

    names = {str(c) for c in columns}
    if not any(c.rpartition(".")[0] in names and c.rpartition(".")[2].isdigit() for c in names):
        return
    raw = pd.read_csv(path, header=None, nrows=1, dtype=str, **readers)  # read as the table was
    header = [str(v) for v in raw.iloc[0]]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice and _looks_headerless(header):  # a first row of data repeats values, not names
        raise DataError(f"the first line of {path} holds numbers, not column names; {NO_HEADER_FIX}")
    if twice:
        raise DataError(
            f"column {twice[0]!r} appears {header.count(twice[0])} times in the header of {path}; "
            "give each column its own name"
        )


def checked_table(
    frame: Any, target: str, source: str, features: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> Table:
    """A DataFrame's features (``features``, else every column but the target, less ``exclude``), target
    values and feature names, or one DataError saying what to fix."""

    if len(frame) == 0:
        raise DataError(f"{source} has 0 data rows; it needs at least one row per class per split")
    if target not in frame.columns:
        cols = ", ".join(map(str, frame.columns[:20]))
        raise DataError(
            f"target column {target!r} not found in {source}; columns are: {cols} (pass --target COLUMN)"
            + _separator_hint(frame.columns)
            + _header_hint(frame.columns, target)
        )
    for option, names in (("features", features or ()), ("exclude", exclude)):
        missing_cols = [c for c in names if c not in frame.columns]
        if missing_cols:
            cols = ", ".join(map(str, frame.columns[:20]))
            raise DataError(
                f"column {missing_cols[0]!r} of dataset.options.{option} not found in {source}; columns are: {cols}"
            )
    feature_cols = list(features) if features else [c for c in frame.columns if c != target]
    feature_cols = [c for c in feature_cols if c not in set(exclude)]
    if not feature_cols:
        raise DataError(f"{source} has no feature columns besides the target {target!r}")
    if target in feature_cols:  # the label as an input: a perfect, useless model
        raise DataError(
            f"the target column {target!r} is listed as a feature; leave it out of dataset.options.features"
        )
    for col in [target, *feature_cols]:  # a feature's empty cells are filled (tunefleet.encoding); a label's cannot be
        n_missing = int(frame[col].isna().sum())
        if n_missing == len(frame):
            raise DataError(_empty_column(str(col), source, is_target=col == target))
        if n_missing and col == target:
            row = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
            raise DataError(
                f"target column {col!r} in {source} has {n_missing} empty cell(s), first at data row {row + 1}; "
                "drop those rows: a row without its label can neither train nor test a model"
            )
    y = frame[target].to_numpy()
    _check_classes(y, target, source)
    columns, vocab = coded_columns(frame, feature_cols, source, target=frame[target])
    with np.errstate(over="ignore"):  # values beyond float32's range become inf, refused below
        X = np.column_stack(columns).astype(np.float32)
    _check_finite(X, feature_cols, source)
    return Table(X, y, [str(c) for c in feature_cols], vocab)


class Table(NamedTuple):
    """A checked table: float32 features (text columns as codes into ``vocab``), target values, names."""

    X: np.ndarray
    y: np.ndarray
    names: list[str]
    vocab: tuple[Levels, ...]


def _separator_hint(columns: Any) -> str:
    """Why a file read as one column: a separator other than the comma it was read with."""
    if len(columns) == 1:
        for sep, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if sep in str(columns[0]):
                return f"; the file looks {name}-separated: save it with commas, or as .tsv for tabs"
    return ""


def _header_hint(columns: Any, target: str) -> str:
    """Why a target named right is not found: spaces around its name, or no header row at all."""
    names = [str(c) for c in columns]
    spaced = [c for c in names if c.strip() == target.strip() and c != target]
    if spaced:
        return f"; the header has {spaced[0]!r}, with spaces: remove them there, or pass --target {spaced[0]!r}"
    if _looks_headerless(names):
        return f"; its first line holds numbers, not column names: {NO_HEADER_FIX}"
    return ""


NO_HEADER_FIX = "add a header row naming the columns"


def _looks_headerless(names: Sequence[str]) -> bool:
    """A header of numbers is a first row of data: every feature is numeric, the label perhaps text."""
    numbers = sum(_is_number(c) for c in names)
    return numbers > 0 and numbers >= len(names) - 1


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _empty_column(col: str, source: str, is_target: bool) -> str:
    """A column without a single value: a separator ending every line makes one, unnamed, in pandas."""
    if is_target:
        return f"target column {col!r} in {source} is empty in every row; pass the column of labels with --target"
    cause = " (a separator at the end of every line makes one)" if col.startswith("Unnamed: ") else ""
    return f"column {col!r} in {source} is empty in every row{cause}; remove it from the file, or {leave_out(col)}"


def _check_classes(y: np.ndarray, target: str, source: str) -> None:
    """A target of class labels: two classes at least, and not a continuous quantity.

    More distinct values than a third of the rows cannot be split (some class would have
    fewer than the 3 rows a stratified 3-way split needs); when they are non-integer
    numbers, the column is a measurement, and saying so beats naming its rarest "class".
    """
    values = np.unique(y)
    if len(values) < 2:
        raise DataError(f"target column {target!r} in {source} has a single class ({y[0]!r}); it needs at least two")
    if len(values) > len(y) / 3 and values.dtype.kind == "f" and np.any(values % 1):
        raise DataError(
            f"target column {target!r} in {source} holds {len(values)} distinct non-integer numbers in {len(y)} "
            f"rows (e.g. {float(y[0]):g}): a continuous quantity, and tunefleet trains classifiers; pass a column of "
            "class labels with --target, or bin this one into classes"
        )


def _check_finite(X: np.ndarray, feature_cols: Sequence[Any], source: str) -> None:
    """No infinite feature value: it would make the scaler's mean, and every prediction, NaN (empty cells are NaN, and filled)."""
    bad = np.isinf(X)
    if bad.any():
        col = int(np.flatnonzero(bad.any(axis=0))[0])
        rows = np.flatnonzero(bad[:, col])
        raise DataError(
            f"feature column {feature_cols[col]!r} in {source} has {len(rows)} infinite value(s) (or beyond "
            f"float32's range, 3.4e38), first at data row {rows[0] + 1}; replace or drop those rows before training"
        )


def loader_for_file(path: str) -> str:
    """Pick the csv or parquet loader from a file's suffix (a folder of Parquet parts is parquet)."""
    suffix = format_suffix(Path(path))
    if suffix in {".parquet", ".pq"} or (Path(path).is_dir() and _parquet_parts(Path(path))):
        return "parquet"
    if suffix in TEXT_SUFFIXES:
        return "csv"
    raise DataError(
        f"cannot tell the format of {path}; use a .csv, .tsv or .txt file (or one compressed as "
        f"{', '.join(sorted(COMPRESSIONS))}), a .parquet file, or a folder of .parquet files"
    )
