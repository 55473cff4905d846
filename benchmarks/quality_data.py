"""The quality benchmark's tables, all available offline, each a DataFrame with its label in ``y``.

Real: scikit-learn's bundled breast_cancer, wine and digits; the Palmer penguins table (from
the ``palmerpenguins`` wheel: text columns and empty cells); the shared 8,000-digit MNIST
subset. Synthetic, generated here (seeded, so every run sees the same rows): a ~10k-row table
with text columns, empty cells and a nonlinear target, and a 120k-row one. Nothing large is
committed: the tables are made when the benchmark runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

MNIST_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-subset"


def _sklearn(loader: Callable[..., object]) -> pd.DataFrame:
    raw = loader(as_frame=True)
    frame = raw.frame.rename(columns={"target": "y"})  # type: ignore[attr-defined]
    names = getattr(raw, "target_names", None)
    frame["y"] = [f"class_{v}" if names is None else str(names[v]) for v in frame["y"]]
    return frame


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return _sklearn(load_breast_cancer)


def wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return _sklearn(load_wine)


def digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    frame = _sklearn(load_digits)
    frame["y"] = [label.removeprefix("class_") for label in frame["y"]]
    frame["y"] = "digit_" + frame["y"].astype(str)
    return frame


def penguins() -> pd.DataFrame:
    """344 rows, 3 species: text columns (island, sex) and empty cells in five columns."""
    from palmerpenguins import load_penguins

    return load_penguins().rename(columns={"species": "y"})


def _mixed(n: int, seed: int) -> pd.DataFrame:
    """Numbers (some cells empty), two text columns (one with empty cells), a nonlinear binary target
    with label noise: interactions, a bump, and text levels that change a slope."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    region = rng.choice([f"r{i}" for i in range(8)], size=n)
    channel = rng.choice(["web", "store", "phone", "partner"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    region_effect = {f"r{i}": v for i, v in enumerate(np.linspace(-1.0, 1.0, 8))}
    slope = {"web": 1.5, "store": -1.0, "phone": 0.5, "partner": 0.0}
    logit = (
        np.sin(2.0 * x[:, 0]) * 1.5
        + x[:, 1] * x[:, 2]
        - 0.8 * (x[:, 3] ** 2 - 1)
        + np.array([region_effect[r] for r in region])
        + np.array([slope[c] for c in channel]) * x[:, 4]
        + 0.3 * x[:, 5]
    )
    y = rng.random(n) < 1 / (1 + np.exp(-2.0 * logit))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    frame["region"], frame["channel"] = region, channel
    for col, share in (("x1", 0.05), ("x4", 0.08)):
        frame.loc[rng.random(n) < share, col] = np.nan
    frame.loc[rng.random(n) < 0.04, "channel"] = None
    frame["y"] = np.where(y, "yes", "no")
    return frame


def mixed_10k() -> pd.DataFrame:
    return _mixed(10_000, seed=7)


def large_120k() -> pd.DataFrame:
    """120,000 rows, 10 numbers, 3 classes: the argmax of three smooth nonlinear scores plus noise."""
    rng = np.random.default_rng(11)
    n = 120_000
    x = rng.normal(size=(n, 10))
    scores = np.stack(
        [
            np.sin(x[:, 0] * 1.5) + x[:, 1] * x[:, 2] * 0.8 + 0.5 * x[:, 3],
            np.cos(x[:, 4]) * 1.2 + 0.6 * x[:, 5] ** 2 - 0.4 * x[:, 0] * x[:, 6],
            np.tanh(x[:, 7] + x[:, 8]) * 1.5 - 0.3 * x[:, 9] + 0.2 * x[:, 1] ** 2,
        ],
        axis=1,
    )
    y = np.argmax(scores + rng.gumbel(scale=0.35, size=scores.shape), axis=1)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(10)])
    frame["y"] = np.array(["alpha", "beta", "gamma"])[y]
    return frame


def mnist() -> pd.DataFrame:
    """The shared subset's 8,000 real digits (both of its files): 784 pixel columns, labels digit_0..9."""
    import gzip  # noqa: F401 - the subset is raw IDX, read with numpy

    raw = MNIST_ROOT / "MNIST" / "raw"
    parts = []
    for images, labels in (
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ):
        pixels = np.frombuffer((raw / images).read_bytes(), dtype=np.uint8, offset=16).reshape(-1, 784)
        digits_ = np.frombuffer((raw / labels).read_bytes(), dtype=np.uint8, offset=8)
        part = pd.DataFrame(pixels, columns=[f"px{i}" for i in range(784)])
        part["y"] = [f"digit_{d}" for d in digits_]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


TABLES: dict[str, Callable[[], pd.DataFrame]] = {
    "breast_cancer": breast_cancer,
    "wine": wine,
    "digits": digits,
    "penguins": penguins,
    "mixed_10k": mixed_10k,
    "large_120k": large_120k,
    "mnist": mnist,
}
