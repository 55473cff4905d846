"""Temperature scaling, and the probabilities it scales."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from tunefleet.calibration import fit_temperature, probabilities


def test_temperature_scaling_reduces_log_loss() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    logits = 6.0 * (y - 0.5) + rng.normal(0, 4, 500)  # over-confident
    t = fit_temperature(logits, y)
    assert t > 1.5
    assert skm.log_loss(y, probabilities(logits, t)) < skm.log_loss(y, probabilities(logits))


def test_temperature_not_fitted_on_tiny_validation_sets() -> None:
    assert fit_temperature(np.array([-3.0, 4.0]), np.array([0, 1])) == 1.0


def test_temperature_does_not_sharpen_without_bound_on_separated_validation_rows() -> None:
    """Every validation row right: log loss falls as the temperature does, down to the search's bound."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    logits = (2 * y - 1) * rng.uniform(0.5, 3.0, 60)
    assert fit_temperature(logits, y) == 1.0
    flipped = y.copy()
    flipped[:3] = 1 - flipped[:3]  # three wrong rows bound the sharpening: a temperature is fitted again
    assert 0.05 * 1.01 < fit_temperature(logits, flipped) != 1.0


def test_binary_probabilities_are_scipys_expit_to_float_precision_and_never_warn() -> None:
    import warnings

    from scipy.special import expit

    rng = np.random.default_rng(0)
    z = np.concatenate([np.linspace(-800, 800, 20001), rng.normal(0, 8, 100_000), [0.0, -0.0, np.inf, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in exp for large |z|
        prob = probabilities(z)
    normal = z > -709  # below, expit's exp(-z) overflows to 0.0, where this keeps the subnormal value
    np.testing.assert_allclose(prob[normal], expit(z[normal]), rtol=5e-16, atol=0)  # 3 ulps at most, measured
    assert np.all(np.abs(prob[~normal] - expit(z[~normal])) < 1e-307)
    assert prob[-2] == 1.0 and prob[-1] == 0.0 and prob[-4] == 0.5
