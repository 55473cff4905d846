"""A user's feature columns as a dataset keeps them: numbers (NaN where empty), text as codes.

What becomes of them for the model, and why, is :mod:`tunefleet.encoding`. Here a column
is read once, and every column that would train badly is named in one line, each with
why, followed by the ``exclude`` that leaves them all out:

- numbers with a few cells of text (``12,5`` among ``12.5``\\ s): a numeric column with
  typos, whose cells to fix the line names, not categories;
- text whose values are nearly all different (names, free text, identifiers), or with
  more levels than one indicator input each can learn from;
- dates and durations;
- keys: a saved index, or an ``id`` of a different whole number in every row;
- the label recoded (``1``/``0`` beside ``sick``/``healthy``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunefleet.encoding import EMPTY, Levels, is_empty
from tunefleet.errors import DataError

# A text column is categories when it has at most FEW_LEVELS values, or more but no more
# than half its rows and MAX_LEVELS (each level is an input column); else it is refused.
FEW_LEVELS = 20
MAX_LEVELS = 100


def leave_out(*cols: Any) -> str:
    """The fix for columns that cannot be features: the search's option that leaves them out."""
    them = "it" if len(cols) == 1 else "them"
    return f"leave {them} out with --set 'dataset.options.exclude={json.dumps([str(c) for c in cols])}'"


def coded_columns(
    frame: Any, names: Sequence[Any], source: str, target: Any = None
) -> tuple[list[np.ndarray], tuple[Levels, ...]]:
    """A table's feature columns: numbers as float64 (NaN where empty), text as codes into its sorted levels.

    Every column that cannot train is named in one line, with the ``exclude`` that leaves
    them all out, so that one rerun gets past them.
    """
    import pandas as pd

    columns, vocab, unusable = [], [], []  # unusable: (column, why)
    for col in names:
        if target is not None and _relabels(frame[col], target):
            unusable.append(
                (col, "the target in other words: each of its values goes with one class, each class with one")
            )
            continue
        series = as_numbers(frame[col])
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            unusable.append((col, f"{'dates' if series.dtype.kind == 'M' else 'durations'}, {series.dtype}{TIMES}"))
            continue
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            codes, words = series.astype("Float64").to_numpy(np.float64, na_value=np.nan), None
            why = _key(str(col), codes)
            if why:
                unusable.append((col, why))
                continue
        else:
            codes, words, why = text_column(series.to_numpy())
            why = why or _not_categories(words, len(codes))
            if why:
                unusable.append((col, why))
                continue
        columns.append(codes)
        vocab.append(words)
    if unusable:
        named = "; ".join(f"{col!r} ({why})" for col, why in unusable[:5])
        raise DataError(
            f"{len(unusable)} feature column(s) of {source} cannot train: {named}; "
            f"{leave_out(*(col for col, _ in unusable))}"
        )
    return columns, tuple(vocab)


# ISO (2007-11-09, with or without a time), then as spreadsheets write days: US, European
DATE_FORMATS = ("ISO8601", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y")
TIMES = ": turn them into numbers in the file, such as a year or days since an event"


ID_WORD = re.compile(r"(^|[\s_.-])(id|key|index|row|rowid)$|^(id|key|index|rowid)([\s_.-]|$)", re.IGNORECASE)
ID_CAMEL = re.compile(r"[a-z0-9](Id|ID|Key|Index)$")  # patientId, PatientID


def _key(name: str, values: np.ndarray) -> str | None:
    """Why a numeric column is a key, not a feature, or None. A model would learn the file's
    order from a key (files are often sorted by class), and ask every input for it.

    - Unnamed and holding the row numbers 0..n-1 or 1..n: an index saved with the file
      (pandas' ``to_csv`` without ``index=False``, R's ``write.csv``); an unnamed column
      of other numbers is a feature.
    - Named as an identifier (``id``, ``patient_id``, ``customerId``...) and a different
      whole number in every row.
    """
    if len(values) < 2 or np.isnan(values).any():
        return None
    if name.startswith("Unnamed: "):
        for start in (0, 1):
            if np.array_equal(values, np.arange(start, start + len(values))):
                return (
                    f"no name, and the row numbers {start}..{start + len(values) - 1}: an index saved with the file "
                    "by pandas' to_csv without index=False or R's write.csv; save the file without it"
                )
        return None
    if not (ID_WORD.search(name) or ID_CAMEL.search(name)):
        return None
    if np.all(values == np.round(values)) and len(np.unique(values)) == len(values):
        return "a different whole number in every row under an identifier's name"
    return None


def _relabels(column: Any, target: Any) -> bool:
    """Whether a column is the target under other names (``1``/``0`` for ``sick``/``healthy``): a
    perfect, useless model, a leak from how the file was made (a recoded copy of the label)."""
    import pandas as pd

    classes = target.nunique()
    if column.iloc[:1000].nunique() > classes:  # most columns are told apart by their head
        return False
    if column.nunique(dropna=False) != classes or column.isna().any():
        return False
    pairs = pd.DataFrame({"c": column.to_numpy(), "t": target.to_numpy()}).drop_duplicates()
    return len(pairs) == pairs["c"].nunique() == pairs["t"].nunique()


def _not_categories(words: tuple[str, ...], n_rows: int) -> str | None:
    """Why a text column's levels cannot be categories: dates, or nearly one level per row (or too many)."""
    import pandas as pd

    filled = pd.Series([w for w in words if w != EMPTY])
    dated = filled.str.contains(r"\D")  # a number alone (2019, a declared category) is no date
    if dated.mean() >= 0.9 and any(
        pd.to_datetime(filled, format=f, errors="coerce").notna().mean() >= 0.9 for f in DATE_FORMATS
    ):
        return f"dates as text, e.g. {filled.iloc[0]!r}{TIMES}"
    if len(words) > MAX_LEVELS or len(words) > max(FEW_LEVELS, n_rows // 2):
        return (
            f"{len(words)} different values in {n_rows} rows: names, free text or identifiers, or more categories "
            f"than {MAX_LEVELS}, which no indicator input per value can learn from"
        )
    return None


DECIMAL_COMMA = r"^[+-]?\d+,\d+$|^[+-]?\d+$"


def decimal_commas(frame: Any) -> Any:
    """Text columns of numbers written with a decimal comma (``71,3``) as numbers.

    Only for files whose separator is not the comma (``;``, tab), where an unquoted comma
    cannot separate fields: there a cell like ``71,3`` is a decimal, as European
    spreadsheets write it. Every filled cell of the column must look like one, else it is
    left as it is (and the feature check says what it holds).
    """
    import pandas as pd

    for col in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col]):
            continue
        filled = frame[col].dropna().astype(str).str.strip()
        if len(filled) and filled.str.contains(",").any() and filled.str.fullmatch(DECIMAL_COMMA).all():
            frame[col] = pd.to_numeric(frame[col].astype(str).str.strip().str.replace(",", "."), errors="coerce")
    return frame


def as_numbers(series: Any) -> Any:
    """An object column whose every value is a number (Python ints or Decimals from a database) as numbers;
    a declared ``category`` column stays categories, whatever its levels look like."""
    import pandas as pd

    if series.dtype != object:
        return series
    try:
        return pd.to_numeric(series)
    except (TypeError, ValueError):
        return series


def text_column(values: Any) -> tuple[np.ndarray, tuple[str, ...], str | None]:
    """A text feature column as float codes into its sorted distinct values (an empty cell: :data:`EMPTY`),
    and why it cannot train when it is numbers with a few cells of text, or None."""
    import pandas as pd

    words = np.asarray([EMPTY if is_empty(v) else str(v) for v in values], dtype=object)
    filled = words != EMPTY
    numbers = pd.to_numeric(pd.Series(words[filled]), errors="coerce").notna().to_numpy()
    why = None
    if 0.9 <= numbers.mean() < 1:  # all numbers: a column declared as categories (pandas' category dtype)
        rows = np.flatnonzero(filled)[~numbers]
        why = (
            f"numbers, but {len(rows)} cell(s) of text, first {words[rows[0]]!r} at data row {rows[0] + 1}: "
            "fix or drop those cells"
        )
    vocab, codes = np.unique(words, return_inverse=True)
    return codes.astype(np.float32), tuple(str(w) for w in vocab), why
