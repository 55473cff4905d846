"""Text feature columns as one indicator column per level, the levels fitted on the training rows.

Why indicators and not codes: an MLP reads a code as a quantity, as if level "C" were
twice level "B". Why the training rows only: the levels are fitted preprocessing, like the
scaler, and validation and test must not shape it. A level the training rows never showed
(in validation, test or a prediction) sets none of its column's indicators: the model has
learned nothing about it, and all zeros says so (scikit-learn's ``handle_unknown="ignore"``).

A dataset keeps each text column as integer codes into that column's vocabulary (every
value in the file, sorted), so splits, hashes and the object store see float arrays
only; :class:`Encoding` turns raw columns, as codes or as the values a user passes,
into the model's inputs. Numeric columns pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunefleet.errors import DataError

Levels = tuple[str, ...] | None  # None: a numeric column


@dataclass(frozen=True)
class Encoding:
    """Each raw input column, in order, as its numeric value or as its levels' indicators."""

    columns: tuple[str, ...]
    levels: tuple[Levels, ...]

    @classmethod
    def numeric(cls, columns: Sequence[str]) -> Encoding:
        return cls(tuple(columns), (None,) * len(columns))

    @classmethod
    def fit(cls, columns: Sequence[str], vocab: Sequence[Levels], X_train: np.ndarray) -> Encoding:
        """Each text column's levels as the training rows hold them (``X_train``: codes into ``vocab``)."""
        levels: list[Levels] = []
        for j, words in enumerate(vocab):
            if words is None:
                levels.append(None)
            else:
                seen = np.unique(X_train[:, j].astype(np.int64))
                levels.append(tuple(words[int(c)] for c in seen))
        return cls(tuple(columns), tuple(levels))

    @property
    def has_text(self) -> bool:
        return any(lv is not None for lv in self.levels)

    @property
    def text_columns(self) -> dict[str, tuple[str, ...]]:
        return {c: lv for c, lv in zip(self.columns, self.levels, strict=True) if lv is not None}

    @property
    def width(self) -> int:
        """The model's input width: one per numeric column, one per level of a text column."""
        return sum(1 if lv is None else len(lv) for lv in self.levels)

    def expand(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        """Raw columns (numbers; text as str values) -> the float32 model inputs."""
        if not self.has_text:
            return np.column_stack(columns).astype(np.float32) if columns else np.empty((0, 0), np.float32)
        blocks = []
        for values, lv in zip(columns, self.levels, strict=True):
            if lv is None:
                blocks.append(np.asarray(values, dtype=np.float32).reshape(-1, 1))
            else:
                blocks.append(indicators(values, lv))
        return np.concatenate(blocks, axis=1)

    def expand_codes(self, X: np.ndarray, vocab: Sequence[Levels]) -> np.ndarray:
        """A dataset's rows (text columns as codes into ``vocab``) -> the model inputs; numbers alone: ``X`` itself."""
        if not self.has_text:
            return X
        columns = [
            X[:, j] if words is None else np.asarray(words, dtype=object)[X[:, j].astype(np.int64)]
            for j, words in enumerate(vocab)
        ]
        return self.expand(columns)

    def decode(self, X: np.ndarray) -> list[np.ndarray]:
        """Model inputs (unscaled) -> raw columns that :meth:`expand` maps back to the same inputs.

        A row whose indicators are all zero held a level the training rows never showed; it
        decodes to a value outside the levels, which expands to zeros again.
        """
        out, j = [], 0
        for lv in self.levels:
            if lv is None:
                out.append(X[:, j])
                j += 1
                continue
            block = X[:, j : j + len(lv)]
            words = np.asarray([*lv, unseen_level(lv)], dtype=object)
            out.append(words[np.where(block.max(axis=1) > 0.5, block.argmax(axis=1), len(lv))])
            j += len(lv)
        return out

    def to_json(self) -> dict[str, list[str]]:
        """The text columns' levels, by column (numeric columns are the rest of ``columns``)."""
        return {c: list(lv) for c, lv in self.text_columns.items()}

    @classmethod
    def from_json(cls, columns: Sequence[str], text: dict[str, list[str]] | None) -> Encoding:
        text = text or {}
        return cls(tuple(columns), tuple(tuple(text[c]) if c in text else None for c in columns))


def indicators(values: np.ndarray, levels: tuple[str, ...]) -> np.ndarray:
    """One float32 column per level, 1 where the value is that level (as text; 3 and "3" are one level)."""
    index = {level: i for i, level in enumerate(levels)}
    codes = np.fromiter((index.get(str(v), -1) for v in values), dtype=np.int64, count=len(values))
    out = np.zeros((len(values), len(levels)), dtype=np.float32)
    known = codes >= 0
    out[np.flatnonzero(known), codes[known]] = 1.0
    return out


def unseen_level(levels: Sequence[str]) -> str:
    """A value that is none of ``levels``, standing for a level the training rows never showed."""
    word = "(unseen)"
    while word in levels:
        word += "'"
    return word


def coded_columns(frame: Any, names: Sequence[Any], source: str) -> tuple[list[np.ndarray], tuple[Levels, ...]]:
    """A table's feature columns as a dataset keeps them: numbers as float64, text as codes into its levels."""
    import pandas as pd

    columns, vocab = [], []
    for col in names:
        series = _as_numbers(frame[col])
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            codes, words = series.to_numpy(np.float64), None
        else:
            codes, words = text_column(series.to_numpy(), str(col), source)
        columns.append(codes)
        vocab.append(words)
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
    """A text feature column (no missing cells) as float codes into its sorted distinct values.

    Two kinds of text column would train badly, and are refused naming the fix: numbers
    with a few cells of text ("n/a", "12,5"), which are a numeric column with typos, not
    categories; and a column whose values are nearly all different (names, free text,
    identifiers), where every level is one row and no indicator can generalize.
    """
    import pandas as pd

    words = np.asarray([str(v) for v in values], dtype=object)
    numbers = pd.to_numeric(pd.Series(words), errors="coerce").notna().to_numpy()
    if 0.9 <= numbers.mean() < 1:  # all numbers: a column declared as categories (pandas' category dtype)
        row = int(np.flatnonzero(~numbers)[0])
        raise DataError(
            f"feature column {col!r} in {source} holds numbers but {int((~numbers).sum())} cell(s) of text, first "
            f"{words[row]!r} at data row {row + 1}; fix or drop those cells (or leave the column out with "
            "dataset.options.features)"
        )
    vocab, codes = np.unique(words, return_inverse=True)
    if len(vocab) > MAX_LEVELS or len(vocab) > max(FEW_LEVELS, len(words) // 2):
        raise DataError(
            f"feature column {col!r} in {source} is text with {len(vocab)} different values in {len(words)} rows "
            f"(e.g. {words[0]!r}): names, free text or identifiers, or more categories than one indicator each "
            f"can learn (at most {MAX_LEVELS}); leave it out with dataset.options.features, or group its rare values"
        )
    return codes.astype(np.float32), tuple(str(w) for w in vocab)


# A text column is categories when it has at most FEW_LEVELS values, or more but no more
# than half its rows and MAX_LEVELS (each level is an input column); else it is refused.
FEW_LEVELS = 20
MAX_LEVELS = 100
