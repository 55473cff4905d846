"""A user's feature columns as a dataset keeps them: numbers (NaN where empty), text as codes.

What becomes of them for the model, and why, is :mod:`tunefleet.encoding`. Here a column
is read once and two kinds of text column that would train badly are refused, each in
one line naming the fix:

- numbers with a few cells of text (``12,5`` among ``12.5``\\ s): a numeric column with
  typos, not categories;
- a column whose values are nearly all different (names, free text, identifiers), or
  with more levels than one indicator input each can learn from.
"""

from __future__ import annotations

import json
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


def coded_columns(frame: Any, names: Sequence[Any], source: str) -> tuple[list[np.ndarray], tuple[Levels, ...]]:
    """A table's feature columns: numbers as float64 (NaN where empty), text as codes into its sorted levels."""
    import pandas as pd

    columns, vocab, too_many = [], [], []
    for col in names:
        series = _as_numbers(frame[col])
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            raise DataError(
                f"feature column {col!r} in {source} holds {'dates' if series.dtype.kind == 'M' else 'durations'} "
                f"({series.dtype}), which are neither numbers nor categories to a model; turn it into numbers in the "
                f"file (a year, a day of the year, days since an event), or {leave_out(col)}"
            )
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            codes, words = series.astype("Float64").to_numpy(np.float64, na_value=np.nan), None
        else:
            codes, words = text_column(series.to_numpy(), str(col), source)
            if len(words) > MAX_LEVELS or len(words) > max(FEW_LEVELS, len(codes) // 2):
                too_many.append((col, len(words)))
        columns.append(codes)
        vocab.append(words)
    if too_many:  # every such column in one line, so that one rerun gets past them all
        shown = ", ".join(f"{c!r} ({n} values)" for c, n in too_many[:5])
        raise DataError(
            f"text feature column(s) {shown} in {source} have nearly a different value in every row, or more "
            f"than {MAX_LEVELS}: names, free text or identifiers, which no indicator input per value can learn "
            f"from; {leave_out(*(c for c, _ in too_many))}, or group {'its' if len(too_many) == 1 else 'their'} "
            "rare values"
        )
    return columns, tuple(vocab)


def _as_numbers(series: Any) -> Any:
    """An object column whose every value is a number (Python ints from a database, say) as numbers;
    a declared ``category`` column stays categories, whatever its levels look like."""
    import pandas as pd

    if series.dtype != object:
        return series
    try:
        return pd.to_numeric(series)
    except (TypeError, ValueError):
        return series


def text_column(values: Any, col: str, source: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """A text feature column as float codes into its sorted distinct values (an empty cell: :data:`EMPTY`)."""
    import pandas as pd

    words = np.asarray([EMPTY if is_empty(v) else str(v) for v in values], dtype=object)
    filled = words != EMPTY
    numbers = pd.to_numeric(pd.Series(words[filled]), errors="coerce").notna().to_numpy()
    if 0.9 <= numbers.mean() < 1:  # all numbers: a column declared as categories (pandas' category dtype)
        rows = np.flatnonzero(filled)[~numbers]
        raise DataError(
            f"feature column {col!r} in {source} holds numbers but {len(rows)} cell(s) of text, first "
            f"{words[rows[0]]!r} at data row {rows[0] + 1}; fix or drop those cells, or {leave_out(col)}"
        )
    vocab, codes = np.unique(words, return_inverse=True)
    return codes.astype(np.float32), tuple(str(w) for w in vocab)
