"""Raw prediction input -> the float32 feature matrix a bundle was trained on.

People pass what they have: the training file itself (target and id columns still in
it, columns in any order, integer / boolean / nullable ``Int64`` dtypes, text columns
as text), a list of row dicts, or a plain array. Columns are matched by name and extra
columns ignored; what cannot work (a missing column, text in a numeric feature, an
empty cell) is one ``DataError`` that names the columns, so nobody has to read a numpy
traceback. Text columns become their levels' indicators (:mod:`tunefleet.encoding`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tunefleet.encoding import Column, Encoding, is_empty
from tunefleet.errors import DataError


def _names(cols: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(c) for c in cols[:limit])
    return shown + (f" and {len(cols) - limit} more" if len(cols) > limit else "")


def _as_frame(X: Any) -> Any | None:
    """A DataFrame for named input (DataFrame, list of row dicts, dict of columns); None for arrays."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, Mapping):
        return pd.DataFrame({k: np.atleast_1d(v) for k, v in X.items()})
    if isinstance(X, list | tuple) and X and all(isinstance(row, Mapping) for row in X):
        return pd.DataFrame(list(X))
    return None


def _to_float(col: Any) -> tuple[np.ndarray, Any]:
    """One column as float64 (NaN for empty cells), plus an example of a non-numeric value or None."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        # Float64 takes int, bool and their nullable kinds (pd.NA becomes NaN)
        return col.astype("Float64").to_numpy(dtype="float64", na_value=np.nan), None
    as_objects = col.astype(object).map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
    converted = pd.to_numeric(as_objects, errors="coerce")
    text = converted.isna() & col.notna()
    return converted.to_numpy(dtype="float64", na_value=np.nan), (col[text].iloc[0] if text.any() else None)


def _raw_columns(frame: Any, encoding: Encoding) -> list[np.ndarray]:
    """The named feature columns: numbers as float64 (whatever their numeric dtype, NaN where empty), text as it is."""
    columns, bad = [], []
    for column in encoding.columns:
        if column.levels is not None:
            columns.append(frame[column.name].to_numpy(dtype=object))
            continue
        values, example = _to_float(frame[column.name])
        if example is not None:
            bad.append(f"{column.name!r} (e.g. {example!r})")
        columns.append(values)
    if bad:
        raise DataError(f"input has non-numeric values in feature column(s) {', '.join(bad[:5])}; pass numbers")
    return columns


def _unusable(values: np.ndarray, column: Column) -> bool:
    """An infinite number (or one beyond float32's range), or an empty cell where the training file had none."""
    if column.levels is not None:
        return not column.accepts_empty and any(is_empty(v) for v in values)
    with np.errstate(over="ignore"):
        single = np.asarray(values, np.float32)
    return bool(np.isinf(single).any()) or (not column.accepts_empty and bool(np.isnan(single).any()))


def feature_matrix(X: Any, feature_names: Sequence[str], encoding: Encoding | None = None) -> np.ndarray:
    """Raw input -> float32 model inputs: the training columns in training order, text columns
    as their levels' indicators, empty cells filled where the training file had them
    (:mod:`tunefleet.encoding`; ``None``: every column a number, none empty).

    Named input is matched by column name (extra columns ignored); an array, or a
    DataFrame whose columns are just 0..n-1, is taken positionally and must have
    exactly the training width.
    """
    import pandas as pd

    encoding = encoding or Encoding.numeric(feature_names)
    n = len(feature_names)
    frame = _as_frame(X)
    positional = frame is not None and [str(c) for c in frame.columns] == [str(i) for i in range(frame.shape[1])]
    if frame is not None and not positional:
        cols = {str(c): c for c in frame.columns}
        missing = [c for c in feature_names if c not in cols]
        if missing:
            raise DataError(
                f"input is missing {len(missing)} feature column(s): {_names(missing)}; pass the {n} training "
                "columns (the model metadata lists them as feature_names); other columns are ignored"
            )
        frame = frame[[cols[c] for c in feature_names]]
        frame.columns = list(feature_names)
    else:
        raw = np.asarray(frame.to_numpy() if frame is not None else X)
        raw = raw.reshape(1, -1) if raw.ndim == 1 else raw
        if raw.ndim != 2 or raw.shape[1] != n:
            width = raw.shape[-1] if raw.ndim else 0
            raise DataError(
                f"input has {width} feature(s) per row, the model expects {n}; pass a DataFrame with the training "
                "columns, or rows in training order"
            )
        if encoding.has_text:
            frame = pd.DataFrame(raw, columns=list(feature_names))
        else:
            try:
                raw = raw.astype(np.float64)
            except (TypeError, ValueError):
                raise DataError("input has non-numeric values; every feature must be a number") from None
            frame = None
    columns = _raw_columns(frame, encoding) if frame is not None else list(raw.T)
    unusable = [c.name for c, values in zip(encoding.columns, columns, strict=True) if _unusable(values, c)]
    if unusable:  # refused as training refuses them; empty cells only where the training file had none
        raise DataError(
            f"input has missing or infinite values (or beyond float32's range, 3.4e38) in column(s) "
            f"{_names(unusable)}; fill them first"
        )
    with np.errstate(over="ignore"):
        return encoding.expand(columns)
