"""The portable model bundle: encoding + scaler + network + threshold + labels + feature names.

A bundle predicts from raw (unscaled) features, so a registered model needs nothing
from the search that produced it. It is saved as ``bundle.json`` (architecture,
labels, threshold) plus ``weights.npz`` (state_dict and scaler arrays) and loaded
with ``allow_pickle=False``: no pickle anywhere, and the round trip is bit-exact.

A bundle predicts in numpy (:func:`mlp_logits`), not torch: the network is a few
matrix products, and whoever only predicts (the search driver testing the chosen
model, ``tunefleet predict``, a served model) then never imports torch, ~2 s of CPU
here. ``tests/test_train_bundle.py`` holds it to the torch module it was trained as.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunefleet.calibration import probabilities
from tunefleet.datasets import Labelled, n_outputs_for
from tunefleet.encoding import Encoding
from tunefleet.errors import DataError
from tunefleet.inputs import feature_matrix

if TYPE_CHECKING:
    from tunefleet.model import MLP

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class ModelBundle(Labelled):
    """A self-contained trained classifier."""

    dataset: str
    feature_names: tuple[str, ...]
    class_labels: tuple[Any, ...]
    hidden_widths: tuple[int, ...]
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    state_dict: dict[str, np.ndarray]
    threshold: float | None = None
    temperature: float = 1.0
    split_hash: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    encoding: Encoding | None = None  # text columns' levels, empty cells' fills; None: numbers, none empty

    @property
    def n_features(self) -> int:
        """The network's input width: one per numeric feature, one per level of a text feature."""
        return len(self.scaler_mean)

    @property
    def decision_threshold(self) -> float:
        """The positive-class cut-off of a binary model (0.5 when none was tuned)."""
        return 0.5 if self.threshold is None else self.threshold

    @cached_property
    def network(self) -> MLP:
        """The torch module these weights were trained as (imports torch; prediction does not)."""
        import torch

        from tunefleet.model import MLP

        net = MLP(self.n_features, self.hidden_widths, n_outputs_for(self.n_classes))
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state_dict.items()})
        net.eval()
        return net

    def as_matrix(self, X: Any) -> np.ndarray:
        """Raw input (DataFrame, row dicts or array) -> float32 matrix; see :mod:`tunefleet.inputs`."""
        return feature_matrix(X, self.feature_names, self.encoding)

    # -- prediction -------------------------------------------------------------------
    def logits(self, X: Any) -> np.ndarray:
        scaled = (self.as_matrix(X) - self.scaler_mean) / self.scaler_scale
        return mlp_logits(self.state_dict, scaled.astype(np.float32))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, shape (n, n_classes), columns in class_labels order."""
        prob = probabilities(self.logits(X), self.temperature)
        if prob.ndim == 1:
            return np.column_stack([1.0 - prob, prob])
        return prob

    def codes_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """Class codes: the tuned threshold on the positive class, else the argmax."""
        if self.task == "binary":
            return (proba[:, 1] >= self.decision_threshold).astype(np.int64)
        return proba.argmax(axis=1)

    def predict_codes(self, X: Any) -> np.ndarray:
        return self.codes_from_proba(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Original class labels; binary models apply the tuned threshold."""
        labels = np.asarray(self.class_labels, dtype=object)
        out = labels[self.predict_codes(X)]
        try:
            return out.astype(type(self.class_labels[0]))
        except (TypeError, ValueError):
            return out

    def predict_table(self, X: Any) -> Any:
        """A DataFrame: ``label`` plus ``probability`` (binary, positive class) or one
        ``probability_<class>`` column per class (multi-class). What the pyfunc returns."""
        import pandas as pd

        proba = self.predict_proba(X)
        labels = np.asarray(self.class_labels, dtype=object)[self.codes_from_proba(proba)]
        frame = pd.DataFrame({"label": list(labels)})
        if self.task == "binary":
            frame["probability"] = proba[:, 1]
        else:
            for i, label in enumerate(self.class_labels):
                frame[f"probability_{label}"] = proba[:, i]
        return frame

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"state/{k}": v for k, v in self.state_dict.items()}
        arrays["scaler/mean"] = self.scaler_mean
        arrays["scaler/scale"] = self.scaler_scale
        np.savez(directory / "weights.npz", **arrays)  # type: ignore[arg-type]
        meta = {
            "format_version": FORMAT_VERSION,
            "dataset": self.dataset,
            "feature_names": list(self.feature_names),
            "class_labels": list(self.class_labels),
            "hidden_widths": list(self.hidden_widths),
            "threshold": self.threshold,
            "temperature": self.temperature,
            "split_hash": self.split_hash,
            "state_keys": list(self.state_dict),
            "metadata": self.metadata,
        }
        if self.encoding is not None and not self.encoding.plain:
            meta["encoding"] = self.encoding.to_json()
        (directory / "bundle.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ModelBundle:
        directory = Path(directory)
        if not (directory / "bundle.json").is_file():
            raise DataError(f"{directory} is not a tunefleet model bundle (no bundle.json)")
        meta = json.loads((directory / "bundle.json").read_text())
        with np.load(directory / "weights.npz", allow_pickle=False) as npz:
            state = {k: npz[f"state/{k}"] for k in meta["state_keys"]}
            mean, scale = npz["scaler/mean"], npz["scaler/scale"]
        return cls(
            dataset=meta["dataset"],
            feature_names=tuple(meta["feature_names"]),
            class_labels=tuple(meta["class_labels"]),
            hidden_widths=tuple(meta["hidden_widths"]),
            scaler_mean=mean,
            scaler_scale=scale,
            state_dict=state,
            threshold=meta["threshold"],
            temperature=meta["temperature"],
            split_hash=meta["split_hash"],
            metadata=meta.get("metadata", {}),
            encoding=Encoding.from_json(meta["encoding"]) if "encoding" in meta else None,
        )


def mlp_logits(state_dict: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """:class:`tunefleet.model.MLP`'s forward pass in float32 numpy: ``x @ W.T + b`` per
    linear layer (``net.<i>.weight``/``bias``, by index), ReLU between, one binary logit
    squeezed to 1-D."""
    layers = sorted({int(key.split(".")[1]) for key in state_dict})
    for n, i in enumerate(layers):
        weight, bias = state_dict[f"net.{i}.weight"], state_dict[f"net.{i}.bias"]
        x = x @ np.asarray(weight, np.float32).T + np.asarray(bias, np.float32)
        if n < len(layers) - 1:
            np.maximum(x, 0, out=x)
    return x[:, 0] if x.shape[1] == 1 else x


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
