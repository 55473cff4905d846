"""The portable model bundle: one or more networks, each with its encoding, scaler and temperature.

A bundle predicts from raw (unscaled) features, so a registered model needs nothing from
the search that produced it. It is a weighted average of its members' calibrated
probabilities (:class:`Network`), then a threshold: one network for a single trial; a
trial's cross-validation fold models (each read through its own fold's encoding and
scaler); an ensemble of several trials' members (:mod:`tunefleet.ensemble`); or the
logistic-regression baseline as a 0-layer network. Every kind is the same bundle, so the
same pyfunc, signature and REST behaviour serve each.

It is saved as ``bundle.json`` (architecture, labels, threshold, weights) plus
``weights.npz`` (state dicts and scaler arrays), loaded with ``allow_pickle=False``: no
pickle anywhere, and the round trip is bit-exact. A bundle predicts in numpy
(:func:`mlp_logits`), not torch: whoever only predicts (the search driver testing the
chosen model, ``tunefleet predict``, a served model) never imports torch, ~2 s of CPU
here. ``tests/test_bundle.py`` holds it to the torch module it was trained as.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    from tunefleet.splits import PreparedData
    from tunefleet.train_config import TrainConfig

FORMAT_VERSION = 2  # 2: a list of members; 1 (one network, its keys at the top) still loads


@dataclass(frozen=True, eq=False)
class Network:
    """One trained network and what it reads raw rows through: an ensemble's member."""

    hidden_widths: tuple[int, ...]
    state_dict: dict[str, np.ndarray]
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    temperature: float = 1.0
    encoding: Encoding | None = None  # text columns' levels, empty cells' fills; None: numbers, none empty
    weight: float = 1.0

    @property
    def n_features(self) -> int:
        """The network's input width: one per numeric feature, one per level of a text feature."""
        return len(self.scaler_mean)

    def logits(self, matrix: np.ndarray) -> np.ndarray:
        """Logits of rows already turned into this member's input matrix (:meth:`ModelBundle.matrices`)."""
        scaled = (matrix - self.scaler_mean) / self.scaler_scale
        return mlp_logits(self.state_dict, scaled.astype(np.float32))

    def module(self, n_classes: int) -> MLP:
        """The torch module these weights were trained as (imports torch; prediction does not)."""
        import torch

        from tunefleet.model import MLP

        net = MLP(self.n_features, self.hidden_widths, n_outputs_for(n_classes))
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state_dict.items()})
        return net.eval()


@dataclass(frozen=True, eq=False)
class ModelBundle(Labelled):
    """A self-contained trained classifier: its members' weighted probabilities, then the threshold."""

    dataset: str
    feature_names: tuple[str, ...]
    class_labels: tuple[Any, ...]
    members: tuple[Network, ...]
    threshold: float | None = None
    split_hash: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "trial"  # trial, ensemble, baseline: what the search chose

    @property
    def only(self) -> Network:
        """The one network of a single-model bundle (an ensemble has several: iterate ``members``)."""
        if len(self.members) != 1:
            raise ValueError(f"this bundle averages {len(self.members)} networks; read bundle.members")
        return self.members[0]

    @property
    def decision_threshold(self) -> float:
        """The positive-class cut-off of a binary model (0.5 when none was tuned)."""
        return 0.5 if self.threshold is None else self.threshold

    def matrices(self, X: Any) -> list[np.ndarray]:
        """Raw input (DataFrame, row dicts or array) -> each member's float32 input matrix
        (:mod:`tunefleet.inputs`), read once per distinct encoding."""
        read: list[tuple[Encoding | None, np.ndarray]] = []
        out = []
        for member in self.members:
            found = next((m for e, m in read if e == member.encoding), None)
            if found is None:
                found = feature_matrix(X, self.feature_names, member.encoding)
                read.append((member.encoding, found))
            out.append(found)
        return out

    def as_matrix(self, X: Any) -> np.ndarray:
        """A single-model bundle's input matrix for raw rows."""
        return feature_matrix(X, self.feature_names, self.only.encoding)

    # -- prediction -------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, shape (n, n_classes), columns in class_labels order:
        the members' probabilities (each at its own temperature), averaged by weight."""
        total = sum(m.weight for m in self.members)
        prob = sum(
            (m.weight / total) * probabilities(m.logits(matrix), m.temperature)
            for m, matrix in zip(self.members, self.matrices(X), strict=True)
        )
        prob = np.asarray(prob, dtype=np.float64)
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
        arrays: dict[str, np.ndarray] = {}
        members = []
        for i, m in enumerate(self.members):
            arrays.update({f"m{i}/state/{k}": v for k, v in m.state_dict.items()})
            arrays[f"m{i}/scaler/mean"], arrays[f"m{i}/scaler/scale"] = m.scaler_mean, m.scaler_scale
            entry: dict[str, Any] = {"hidden_widths": list(m.hidden_widths), "temperature": m.temperature,
                                     "weight": m.weight, "state_keys": list(m.state_dict)}  # fmt: skip
            if m.encoding is not None and not m.encoding.plain:
                entry["encoding"] = m.encoding.to_json()
            members.append(entry)
        np.savez(directory / "weights.npz", **arrays)  # type: ignore[arg-type]
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "dataset": self.dataset,
            "feature_names": list(self.feature_names),
            "class_labels": list(self.class_labels),
            "threshold": self.threshold,
            "split_hash": self.split_hash,
            "metadata": self.metadata,
            "members": members,
        }
        (directory / "bundle.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ModelBundle:
        directory = Path(directory)
        if not (directory / "bundle.json").is_file():
            raise DataError(f"{directory} is not a tunefleet model bundle (no bundle.json)")
        meta = json.loads((directory / "bundle.json").read_text())
        with np.load(directory / "weights.npz", allow_pickle=False) as npz:
            if meta.get("format_version", 1) == 1:  # one network, its keys at the top
                members = [_network({**meta, "weight": 1.0}, npz, "")]
            else:
                members = [_network(entry, npz, f"m{i}/") for i, entry in enumerate(meta["members"])]
        return cls(
            dataset=meta["dataset"],
            feature_names=tuple(meta["feature_names"]),
            class_labels=tuple(meta["class_labels"]),
            members=tuple(members),
            threshold=meta["threshold"],
            split_hash=meta["split_hash"],
            metadata=meta.get("metadata", {}),
            kind=meta.get("kind", "trial"),
        )


def _network(entry: dict[str, Any], npz: Any, prefix: str) -> Network:
    return Network(
        hidden_widths=tuple(entry["hidden_widths"]),
        state_dict={k: npz[f"{prefix}state/{k}"] for k in entry["state_keys"]},
        scaler_mean=npz[f"{prefix}scaler/mean"],
        scaler_scale=npz[f"{prefix}scaler/scale"],
        temperature=entry["temperature"],
        encoding=Encoding.from_json(entry["encoding"]) if "encoding" in entry else None,
        weight=entry["weight"],
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


def network_of(
    cfg: TrainConfig, data: PreparedData, state_dict: dict[str, np.ndarray], temperature: float = 1.0
) -> Network:
    """The kept weights as a bundle member, read through ``data``'s encoding and scaler."""
    return Network(
        hidden_widths=cfg.hidden_widths,
        state_dict=state_dict,
        scaler_mean=data.scaler.mean,
        scaler_scale=data.scaler.scale,
        temperature=temperature,
        encoding=None if data.encoding.plain else data.encoding,
    )


def bundle_of(
    data: PreparedData, members: tuple[Network, ...], threshold: float | None, kind: str = "trial"
) -> ModelBundle:
    """A bundle of ``members`` that predicts ``data``'s labels (the trial, ensemble or baseline kinds)."""
    return ModelBundle(
        dataset=data.dataset,
        feature_names=data.feature_names,
        class_labels=data.class_labels,
        members=members,
        threshold=threshold,
        split_hash=data.split_hash,
        kind=kind,
    )
