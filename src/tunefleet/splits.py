"""Stratified train/validation/test splits, train-only standardization, split hashes.

The split is deterministic given (dataset content, seed, fractions) and carries a short
content hash so later runs (and the registry gate) can tell whether two models were
tested on the same rows.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from tunefleet.config import StrictModel
from tunefleet.datasets import Dataset, Labelled
from tunefleet.errors import DataError


class SplitSpec(StrictModel):
    """Split fractions (summing to 1) and the shuffling seed."""

    train: float = Field(0.6, gt=0, lt=1)
    val: float = Field(0.2, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    seed: int = 0

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
    """Standardized split arrays: what every trial of a search shares."""

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


def _split_hash(dataset: Dataset, spec: SplitSpec, indices: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(dataset.name.encode())
    h.update(np.ascontiguousarray(dataset.X).tobytes())
    h.update(np.ascontiguousarray(dataset.y).tobytes())
    if dataset.X_test is not None and dataset.y_test is not None:
        h.update(np.ascontiguousarray(dataset.X_test).tobytes())
        h.update(np.ascontiguousarray(dataset.y_test).tobytes())
    h.update(f"{spec.seed}:{spec.train}:{spec.val}:{spec.test}".encode())
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
    scaler = Standardizer.fit(X_tr)
    return PreparedData(
        dataset=dataset.name,
        feature_names=dataset.feature_names,
        class_labels=dataset.class_labels,
        X_train=scaler.transform(X_tr),
        y_train=y_tr,
        X_val=scaler.transform(X_va),
        y_val=y_va,
        X_test=scaler.transform(X_te),
        y_test=y_te,
        scaler=scaler,
        split_hash=_split_hash(dataset, spec, indices),
    )
