"""Scoring a finished bundle on a split: what the pipeline reports and gates on.

Bundles take raw features (unscaled, text as text), so a split's arrays are mapped back
first. The test split's probabilities are computed once (:class:`SplitScores`) and
every test metric, the confusion matrix and the plots read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tunefleet.bundle import ModelBundle
from tunefleet.metrics import binary_metrics, confusion_matrix, multiclass_metrics, prefixed
from tunefleet.splits import PreparedData


def raw_features(data: PreparedData, split: str, limit: int | None = None) -> Any:
    """A split's rows (its first ``limit``) as a bundle takes them: the standardization undone, text
    columns' indicators turned back into their levels and filled cells into empty ones (a DataFrame
    then, else a float32 array)."""
    X = (getattr(data, f"X_{split}")[:limit] * data.scaler.scale + data.scaler.mean).astype(np.float32)
    if data.encoding.plain:
        return X
    import pandas as pd

    return pd.DataFrame(dict(zip(data.feature_names, data.encoding.decode(X), strict=True)))


@dataclass(frozen=True)
class SplitScores:
    """A bundle's probabilities on one split, with the true codes: scored once, read many times."""

    bundle: ModelBundle
    X: Any  # raw rows: raw_features
    y: np.ndarray
    proba: np.ndarray

    @classmethod
    def of(cls, bundle: ModelBundle, data: PreparedData, split: str) -> SplitScores:
        X = raw_features(data, split)
        return cls(bundle, X, np.asarray(getattr(data, f"y_{split}"), dtype=np.int64), bundle.predict_proba(X))

    @classmethod
    def of_rows(cls, bundle: ModelBundle, other: SplitScores) -> SplitScores:
        """Another model (a champion, the baseline) on the rows ``other`` scored: paired with it."""
        return cls(bundle, other.X, other.y, bundle.predict_proba(other.X))

    def metrics(self, prefix: str = "test") -> dict[str, float]:
        if self.bundle.task == "binary":
            return prefixed(binary_metrics(self.y, self.proba[:, 1], self.bundle.decision_threshold), prefix)
        return prefixed(multiclass_metrics(self.y, self.proba), prefix)

    def confusion(self) -> np.ndarray:
        """Rows true, columns predicted."""
        codes = self.bundle.codes_from_proba(self.proba)
        return confusion_matrix(self.y, codes, len(self.bundle.class_labels))


def evaluate(bundle: ModelBundle, data: PreparedData, split: str) -> dict[str, float]:
    """Metrics of ``bundle`` on one split of ``data``, prefixed with the split's name."""
    return SplitScores.of(bundle, data, split).metrics(prefix=split)
