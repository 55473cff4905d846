"""Raw feature columns -> the model's inputs: text as indicators, empty cells filled and flagged.

Both are fitted on the training rows only, like the scaler after them: validation and
test must not shape the preprocessing.

- **Text** columns become one indicator input per level the training rows hold. Why not
  codes: an MLP reads a code as a quantity, as if level "C" were twice level "B". A level
  the training rows never showed (in validation, test or a prediction) sets none of its
  column's indicators: the model has learned nothing about it, and all zeros says so
  (scikit-learn's ``handle_unknown="ignore"``).
- **Empty cells**, in a column where the training rows have them: a number is filled with
  the training rows' median and flagged by an indicator input of its own (so the model can
  learn what "not measured" means, which a filled value alone hides); in text, empty is a
  level of its own. A column where only the file's other rows (validation, test) have them
  accepts an empty cell too, so that every row of the file is scored and a user's file like
  it predicts: a number is filled with the training median, unflagged, and empty text is a
  level the training rows never showed. Which columns take which input is decided on the
  training rows alone; that the column may be empty is a fact of the file. A column empty in
  no row of the file accepts no empty cell at prediction: the file never showed one there.

A dataset keeps each text column as codes into that column's vocabulary (every value in
the file, sorted; an empty cell is :data:`EMPTY`) and each empty number as NaN, so splits,
hashes and the object store see float arrays only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Levels = tuple[str, ...] | None  # a column's vocabulary in a dataset; None: numbers
EMPTY = "(empty)"  # the level of an empty text cell


@dataclass(frozen=True)
class Column:
    """One raw input column: a number, or text (``levels``: the training rows' levels)."""

    name: str
    levels: tuple[str, ...] | None = None
    empty: bool = False  # the training rows had empty cells here: filled and flagged
    fill: float = 0.0  # a number's fill for an empty cell: the training rows' median
    optional: bool = False  # the file had empty cells here (any rows): an empty cell is accepted

    @property
    def accepts_empty(self) -> bool:
        return self.empty or self.optional

    @property
    def width(self) -> int:
        if self.levels is not None:
            return len(self.levels)
        return 2 if self.empty else 1


@dataclass(frozen=True)
class Encoding:
    """Each raw input column, in order, as the model takes it (see the module docstring)."""

    columns: tuple[Column, ...]

    @classmethod
    def numeric(cls, names: Sequence[str]) -> Encoding:
        return cls(tuple(Column(str(n)) for n in names))

    @classmethod
    def fit(cls, names: Sequence[str], vocab: Sequence[Levels], X_train: np.ndarray, optional: np.ndarray) -> Encoding:
        """The text columns' levels, the numbers' fills and which of them are flagged, from the
        training rows ``X_train`` (codes into ``vocab``, the file's levels); ``optional``: the number
        columns with an empty cell anywhere in the file, which accept one."""
        columns = []
        for j, (name, words) in enumerate(zip(names, vocab, strict=True)):
            if words is not None:
                levels = tuple(words[int(c)] for c in np.unique(X_train[:, j].astype(np.int64)))
                columns.append(Column(name, levels, empty=EMPTY in levels, optional=EMPTY in words))
            elif optional[j]:
                known = X_train[:, j][~np.isnan(X_train[:, j])]
                fill = float(np.median(known)) if len(known) else 0.0
                columns.append(Column(name, empty=len(known) < len(X_train), fill=fill, optional=True))
            else:
                columns.append(Column(name))
        return cls(tuple(columns))

    @property
    def text(self) -> list[Column]:
        """The text columns, each one indicator input per level."""
        return [c for c in self.columns if c.levels is not None]

    @property
    def filled(self) -> list[Column]:
        """The columns that accept empty cells (the file had some): numbers filled, text a level."""
        return [c for c in self.columns if c.accepts_empty]

    @property
    def has_text(self) -> bool:
        return bool(self.text)

    @property
    def plain(self) -> bool:
        """Numbers only, no empty cells: the inputs are the columns themselves."""
        return all(c.levels is None and not c.accepts_empty for c in self.columns)

    @property
    def width(self) -> int:
        """The model's input width."""
        return sum(c.width for c in self.columns)

    def expand(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """Raw columns (numbers with NaN for empty cells; text as its values) -> float32 model inputs."""
        if self.plain:
            return np.column_stack(values).astype(np.float32)
        blocks = []
        for column, raw in zip(self.columns, values, strict=True):
            if column.levels is not None:
                blocks.append(indicators(raw, column.levels))
                continue
            number = np.asarray(raw, dtype=np.float64)
            gap = np.isnan(number)
            filled = np.where(gap, column.fill, number) if column.optional else number
            blocks.append(np.column_stack([filled, gap]) if column.empty else filled.reshape(-1, 1))
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def expand_codes(self, X: np.ndarray, vocab: Sequence[Levels]) -> np.ndarray:
        """A dataset's rows (text columns as codes into ``vocab``) -> the model inputs; plain numbers: ``X`` itself."""
        if self.plain:
            return X
        values = [
            X[:, j] if words is None else _word_array(words)[X[:, j].astype(np.int64)] for j, words in enumerate(vocab)
        ]
        return self.expand(values)

    def decode(self, X: np.ndarray) -> list[np.ndarray]:
        """Model inputs (unscaled) -> raw columns that :meth:`expand` maps back to the same inputs.

        A row whose indicators are all zero held a level the training rows never showed; it
        decodes to a value outside the levels, which expands to zeros again.
        """
        out, j = [], 0
        for column in self.columns:
            block = X[:, j : j + column.width]
            j += column.width
            if column.levels is None:
                out.append(np.where(block[:, 1] > 0.5, np.nan, block[:, 0]) if column.empty else block[:, 0])
                continue
            words = _word_array((*column.levels, unseen_level(column.levels)))
            out.append(words[np.where(block.max(axis=1) > 0.5, block.argmax(axis=1), len(column.levels))])
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.columns]

    @classmethod
    def from_json(cls, columns: list[dict[str, Any]]) -> Encoding:
        return cls(tuple(Column(**{**c, "levels": _levels(c["levels"])}) for c in columns))


def _levels(levels: list[str] | None) -> tuple[str, ...] | None:
    return None if levels is None else tuple(levels)


def _word_array(words: Sequence[str]) -> np.ndarray:
    """Levels as an object array, the empty level as None (what a user's empty cell is)."""
    return np.asarray([None if w == EMPTY else w for w in words], dtype=object)


def is_empty(value: Any) -> bool:
    """A missing cell: None, NaN or pandas' NA."""
    return value is None or (isinstance(value, float) and np.isnan(value)) or type(value).__name__ == "NAType"


def indicators(values: np.ndarray, levels: tuple[str, ...]) -> np.ndarray:
    """One column per level, 1 where the value is that level (as text: 3 and "3" are one level; empty is EMPTY)."""
    index = {level: i for i, level in enumerate(levels)}
    codes = np.fromiter(
        (index.get(EMPTY if is_empty(v) else str(v), -1) for v in values), dtype=np.int64, count=len(values)
    )
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
