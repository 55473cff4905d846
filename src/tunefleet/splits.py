"""Stratified train/validation/test splits, train-only standardization, split hashes.

The split is deterministic given (dataset content, seed, fractions) and carries a short
content hash so later runs (and the registry gate) can tell whether two models were
tested on the same rows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tunefleet.config import StrictModel
from tunefleet.datasets import Dataset, Labelled
from tunefleet.encoding import Encoding
from tunefleet.errors import DataError

# cv_folds: auto. Up to this many train + validation rows, folds select and train better than the
# validation split: measured on the quality suite's tables of 115 to 6,400 such rows (README, "How a
# search finds its model"), at 1.8x and 3.7x the search's time on the two largest. Beyond that the
# validation split is large and 5 fold models cost 5 times the training; unmeasured for quality.
AUTO_FOLDS, AUTO_CV_ROWS = 5, 10_000


class SplitSpec(StrictModel):
    """Split fractions (summing to 1) and the shuffling seed."""

    train: float = Field(0.6, gt=0, lt=1)
    val: float = Field(0.2, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    # K > 1: train + validation become K stratified folds for the trials (tunefleet.cv); auto:
    # AUTO_FOLDS folds when train + validation hold at most AUTO_CV_ROWS rows, else 1 (the
    # validation split). The test split is the same rows either way.
    cv_folds: int | Literal["auto"] = "auto"

    def folds_for(self, pool_rows: int, smallest_class: int) -> int:
        """The folds this spec asks for with ``pool_rows`` train + validation rows (auto: no more folds than
        the smallest class has rows there, for every fold holds every class; none below 2)."""
        if self.cv_folds == "auto":
            folds = min(AUTO_FOLDS, smallest_class) if pool_rows <= AUTO_CV_ROWS else 1
            return folds if folds >= 2 else 1
        return self.cv_folds

    @model_validator(mode="after")
    def _folds(self) -> SplitSpec:
        if isinstance(self.cv_folds, int) and not 1 <= self.cv_folds <= 20:
            raise ValueError(f"cv_folds must be from 1 to 20, or auto; got {self.cv_folds}")
        return self

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitSpec:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean/scale fitted on the training split only."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        std[std < 1e-12] = 1.0  # constant features (blank MNIST pixels) pass through centred
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float32) - self.mean) / self.scale).astype(np.float32)


@dataclass(frozen=True)
class PreparedData(Labelled):
    """Standardized split arrays: what every trial of a search shares.

    ``feature_names`` are the raw input columns; ``encoding`` says how they became the
    arrays' columns (a text column as one indicator per level, an empty cell filled and
    flagged), fitted on the training rows.
    """

    dataset: str
    feature_names: tuple[str, ...]
    class_labels: tuple[Any, ...]
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    scaler: Standardizer
    split_hash: str
    encoding: Encoding
    # With cv_folds K > 1: K fold views of train + validation, each encoded and standardized
    # on its own training rows (what a trial's K models train and are validated on).
    folds: tuple[PreparedData, ...] = ()

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def stratified_indices(
    y: np.ndarray, fractions: tuple[float, ...], seed: int, class_labels: tuple[Any, ...] = ()
) -> list[np.ndarray]:
    """Split row indices per class into len(fractions) parts, each holding every class.

    Each class contributes round(n_c * fraction) rows to every part but the first (at
    least one), and the rest to the first part; a class too small for that is an error
    rather than a split with a class missing from validation or test.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for code in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == code))
        counts = [max(1, _round_half_up(len(idx) * f)) for f in fractions[1:]]
        n_first = len(idx) - sum(counts)
        if n_first < 1:
            label = class_labels[int(code)] if class_labels else int(code)
            raise DataError(
                f"class {label!r} has only {len(idx)} row(s); a stratified {len(fractions)}-way split needs at least "
                f"{len(fractions)} rows of every class: add data or use fewer splits"
            )
        bounds = np.cumsum([n_first, *counts])[:-1]
        for part, chunk in zip(parts, np.split(idx, bounds), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _split_hash(dataset: Dataset, spec: SplitSpec, indices: list[np.ndarray], folds: int) -> str:
    h = hashlib.sha256()
    h.update(dataset.name.encode())
    h.update(np.ascontiguousarray(dataset.X).tobytes())
    h.update(np.ascontiguousarray(dataset.y).tobytes())
    if dataset.X_test is not None and dataset.y_test is not None:
        h.update(np.ascontiguousarray(dataset.X_test).tobytes())
        h.update(np.ascontiguousarray(dataset.y_test).tobytes())
    if dataset.vocab:  # text columns' codes mean their words
        h.update(repr(dataset.vocab).encode())
    h.update(f"{spec.seed}:{spec.train}:{spec.val}:{spec.test}".encode())
    if folds > 1:  # CV trials' validation metrics are not comparable with a holdout's
        h.update(f":cv{folds}".encode())
    for idx in indices:
        h.update(idx.astype(np.int64).tobytes())
    return h.hexdigest()[:12]


def prepare_data(dataset: Dataset, spec: SplitSpec | None = None) -> PreparedData:
    """Split stratified, fit the scaler on train only, and standardize every split.

    A dataset with an official test split keeps it; validation is then carved,
    stratified, from the training part with the share val / (train + val).
    """
    spec = spec or SplitSpec()
    if dataset.X_test is not None and dataset.y_test is not None:
        val_share = spec.val / (spec.train + spec.val)
        train_idx, val_idx = stratified_indices(dataset.y, (1 - val_share, val_share), spec.seed, dataset.class_labels)
        X_tr, y_tr = dataset.X[train_idx], dataset.y[train_idx]
        X_va, y_va = dataset.X[val_idx], dataset.y[val_idx]
        X_te, y_te = dataset.X_test, dataset.y_test
        indices = [train_idx, val_idx]
    else:
        train_idx, val_idx, test_idx = stratified_indices(
            dataset.y, (spec.train, spec.val, spec.test), spec.seed, dataset.class_labels
        )
        X_tr, y_tr = dataset.X[train_idx], dataset.y[train_idx]
        X_va, y_va = dataset.X[val_idx], dataset.y[val_idx]
        X_te, y_te = dataset.X[test_idx], dataset.y[test_idx]
        indices = [train_idx, val_idx, test_idx]
    n_folds = spec.folds_for(len(y_tr) + len(y_va), int(np.bincount(np.concatenate([y_tr, y_va])).min()))
    split_hash = _split_hash(dataset, spec, indices, n_folds)
    main = _standardized(dataset, split_hash, (X_tr, y_tr), (X_va, y_va), (X_te, y_te))
    if n_folds == 1:
        return main
    X_pool, y_pool = np.concatenate([X_tr, X_va]), np.concatenate([y_tr, y_va])
    folds = stratified_folds(y_pool, n_folds, spec.seed, dataset.class_labels)
    views = []
    for held_out in folds:
        fit = np.setdiff1d(np.arange(len(y_pool)), held_out)
        rows = ((X_pool[fit], y_pool[fit]), (X_pool[held_out], y_pool[held_out]), (X_te, y_te))
        views.append(_standardized(dataset, split_hash, *rows))
    return replace(main, folds=tuple(views))


Rows = tuple[np.ndarray, np.ndarray]


def _empty_columns(dataset: Dataset) -> np.ndarray:
    """The columns with an empty number anywhere in the file (text columns are codes, never NaN)."""
    parts = [dataset.X] + ([dataset.X_test] if dataset.X_test is not None else [])
    return np.asarray(np.any([np.isnan(X).any(axis=0) for X in parts], axis=0))


def _standardized(dataset: Dataset, split_hash: str, train: Rows, val: Rows, test: Rows) -> PreparedData:
    """The three splits encoded (text as indicators, empty cells filled) and standardized, fitted on ``train``
    only (levels, fills, flags, scaler), so no validation or test row shapes the model's inputs. Which
    columns accept an empty cell is the file's: every row of it is scored, and a user's file like it predicts."""
    vocab = dataset.vocab or (None,) * len(dataset.feature_names)
    encoding = Encoding.fit(dataset.feature_names, vocab, train[0], _empty_columns(dataset))
    X_train, X_val, X_test = (encoding.expand_codes(rows[0], vocab) for rows in (train, val, test))
    scaler = Standardizer.fit(X_train)
    return PreparedData(
        dataset=dataset.name,
        feature_names=dataset.feature_names,
        class_labels=dataset.class_labels,
        X_train=scaler.transform(X_train),
        y_train=train[1],
        X_val=scaler.transform(X_val),
        y_val=val[1],
        X_test=scaler.transform(X_test),
        y_test=test[1],
        scaler=scaler,
        split_hash=split_hash,
        encoding=encoding,
    )


def stratified_folds(y: np.ndarray, k: int, seed: int, class_labels: Sequence[Any]) -> list[np.ndarray]:
    """K held-out index sets over ``y``: each class shuffled (seeded) and dealt round-robin,
    so every fold holds every class and fold sizes differ by at most one row."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for code, label in enumerate(class_labels):  # y holds class codes 0..C-1
        idx = np.flatnonzero(y == code)
        if len(idx) < k:
            raise DataError(
                f"class {label!r} has only {len(idx)} row(s) in train + validation; --cv {k} needs at least {k}; "
                "use fewer folds"
            )
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[(dealt + j) % k].append(int(i))
        dealt += len(idx)
    return [np.sort(np.asarray(f, dtype=np.int64)) for f in folds]
