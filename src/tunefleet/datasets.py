"""Dataset registry: name -> loader.

Every loader returns a :class:`Dataset` with float32 features, integer-coded labels
and the original class labels (kept so predictions can be mapped back). Loaders are
looked up by name from ``conf/datasets/<name>.yaml`` (``dataset.loader``) and get the
``dataset.options`` mapping as keyword arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tunefleet.encoding import Levels
from tunefleet.errors import ConfigError, DataError, first_line
from tunefleet.tables import checked_table, read_table, table_stem

Loader = Callable[..., "Dataset"]
_REGISTRY: dict[str, Loader] = {}


def n_outputs_for(n_classes: int) -> int:
    """One logit for binary problems, one per class otherwise."""
    return 1 if n_classes == 2 else n_classes


class Labelled:
    """``n_classes`` and ``task`` for anything that carries ``class_labels``."""

    class_labels: tuple[Any, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_labels)

    @property
    def task(self) -> str:
        """'binary' (one logit, a threshold) or 'multiclass' (K logits, argmax)."""
        return "binary" if self.n_classes == 2 else "multiclass"


@dataclass(frozen=True)
class Dataset(Labelled):
    """Features and integer-coded labels, plus an optional official test split.

    ``vocab`` names, per feature column, the levels of a text column, whose values in
    ``X`` are codes into it (:mod:`tunefleet.encoding`); empty or None: numbers.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_labels: tuple[Any, ...]
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    vocab: tuple[Levels, ...] = ()


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator adding a loader to the registry under ``name``."""

    def decorate(fn: Loader) -> Loader:
        _REGISTRY[name] = fn
        return fn

    return decorate


def dataset_names() -> list[str]:
    """Names of every registered loader."""
    return sorted(_REGISTRY)


def load_dataset(loader: str, options: Mapping[str, Any] | None = None, name: str | None = None) -> Dataset:
    """Load a registered dataset, checking ``options`` against the loader's signature."""
    if loader not in _REGISTRY:
        raise ConfigError(f"unknown dataset loader {loader!r}; choose one of: {', '.join(dataset_names())}")
    fn = _REGISTRY[loader]
    options = dict(options or {})
    accepted = set(inspect.signature(fn).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"dataset.options.{unknown[0]}: unknown option for loader {loader!r}; accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    dataset = fn(**options)
    if name and name != dataset.name:
        dataset = replace(dataset, name=name)
    return dataset


def _from_arrays(name: str, X: Any, y: Any, feature_names: Sequence[str] | None = None) -> Dataset:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    labels, codes = np.unique(np.asarray(y), return_inverse=True)
    names = tuple(feature_names) if feature_names else tuple(f"x{i}" for i in range(X.shape[1]))
    return Dataset(name, X, codes.astype(np.int64), names, tuple(labels.tolist()))


@register_dataset("breast_cancer")
def load_breast_cancer() -> Dataset:
    """sklearn's Wisconsin breast cancer data: 569 rows, 30 features, binary."""
    from sklearn.datasets import load_breast_cancer as sk_load

    raw = sk_load()
    ds = _from_arrays("breast_cancer", raw.data, raw.target, [str(f) for f in raw.feature_names])
    return Dataset(ds.name, ds.X, ds.y, ds.feature_names, tuple(str(n) for n in raw.target_names))


@register_dataset("student_hours")
def load_student_hours() -> Dataset:
    """Six students (hours studied, hours slept) -> passed; seed tutorial 001."""
    X = [[1, 2], [2, 3], [3, 1], [4, 3], [5, 3], [6, 2]]
    return _from_arrays("student_hours", X, [0, 0, 0, 1, 1, 1], ["hours_studied", "hours_slept"])


@register_dataset("sign")
def load_sign() -> Dataset:
    """x = 1..10 and -1..-10, y = x > 0; seed tutorial 002."""
    x = np.concatenate([np.arange(1, 11), -np.arange(1, 11)]).astype(np.float32)
    return _from_arrays("sign", x, (x > 0).astype(int), ["x"])


@register_dataset("threshold_1d")
def load_threshold_1d() -> Dataset:
    """x = arange(-2, 2, 0.1), y = x > 0.2; seed tutorial 003."""
    x = np.arange(-2, 2, 0.1)
    return _from_arrays("threshold_1d", x, (x > 0.2).astype(int), ["x"])


@register_dataset("mnist")
def load_mnist(root: str = "data", download: bool = True) -> Dataset:
    """MNIST through ``torchvision.datasets.MNIST``; keeps the official test split.

    Images are flattened to 784 floats in [0, 1]. Reads the tensors the torchvision
    class loaded instead of iterating it sample by sample (PIL per image is slow).
    """
    from torchvision.datasets import MNIST

    root_path = Path(root).expanduser()
    try:
        train = MNIST(str(root_path), train=True, download=download)
        test = MNIST(str(root_path), train=False, download=download)
    except RuntimeError as err:
        if download:  # torchvision tried every mirror; its message lists each URL's error
            raise DataError(
                f"MNIST is not under {root_path}/MNIST/raw and downloading it failed (no internet?); copy the "
                "MNIST files there or set dataset.options.root to a folder that has them"
            ) from None
        raise DataError(
            f"MNIST not found under {root_path}/MNIST/raw ({first_line(err, 120)}); set dataset.options.root "
            "to a folder with the MNIST files, or dataset.options.download=true with internet access"
        ) from None
    except OSError as err:
        raise DataError(
            f"MNIST download into {root_path} failed ({type(err).__name__}); copy the MNIST files into "
            f"{root_path}/MNIST/raw or set dataset.options.root to a folder that has them"
        ) from None

    def flat(images: Any) -> np.ndarray:
        return images.numpy().reshape(len(images), -1).astype(np.float32) / 255.0

    names = tuple(f"pixel_{i}" for i in range(784))
    return Dataset(
        "mnist",
        flat(train.data),
        train.targets.numpy().astype(np.int64),
        names,
        tuple(range(10)),
        flat(test.data),
        test.targets.numpy().astype(np.int64),
    )


def table_to_dataset(
    frame: Any, target: str, source: str, features: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> Dataset:
    """Validate a DataFrame and turn it into a Dataset (text features as codes, encoded target)."""
    table = checked_table(frame, target, source, features, exclude)
    dataset = _from_arrays(table_stem(Path(source)), table.X, table.y, table.names)
    return replace(dataset, vocab=table.vocab) if any(v is not None for v in table.vocab) else dataset


@register_dataset("csv")
def load_csv(path: str, target: str, features: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> Dataset:
    """A user CSV file: feature columns (numbers, or text as categories) plus a target column (strings or numbers);
    ``features`` names the feature columns (default: all but the target), ``exclude`` leaves some out."""
    return table_to_dataset(read_table(Path(path), "csv"), target, str(path), features, exclude)


@register_dataset("parquet")
def load_parquet(path: str, target: str, features: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> Dataset:
    """A user Parquet file: feature columns (numbers, or text as categories) plus a target column (as load_csv)."""
    return table_to_dataset(read_table(Path(path), "parquet"), target, str(path), features, exclude)
