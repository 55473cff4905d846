"""The in-process loop (--backend optuna, one trial at a time): threshold modes, resume."""

from __future__ import annotations

import pytest

from tunefleet.evaluation import raw_features
from tunefleet.search import load_experiment, run_search


def _exp(name: str, tmp_path, *overrides: str, **kw):
    return load_experiment(name, smoke=True, overrides=[f"search.storage_path={tmp_path}", *overrides], **kw)


def test_threshold_modes(tmp_path) -> None:
    """On the one-process backend: threshold handling is train_one's and the space's, the same under every driver."""
    one = "search.backend=optuna"
    searched = run_search(
        _exp(
            "breast_cancer",
            tmp_path,
            one,
            "search.num_samples=2",
            "threshold.mode=search",
            "search.scheduler.name=none",
        ),
        progress=False,
    )
    for t in searched.trials:
        assert t.metrics["threshold"] == pytest.approx(t.params["threshold"])
    fixed = run_search(
        _exp(
            "breast_cancer", tmp_path, one, "search.num_samples=1", "threshold.objective=fixed", "threshold.value=0.3"
        ),
        progress=False,
    )
    assert fixed.best_bundle is not None and fixed.best_bundle.threshold == pytest.approx(0.3)
    tuned = run_search(
        _exp("breast_cancer", tmp_path, one, "search.num_samples=1", "threshold.objective=balanced_accuracy"),
        progress=False,
    )
    assert tuned.best_bundle is not None
    from tunefleet.thresholds import ThresholdConfig, choose_threshold

    prob = tuned.best_bundle.predict_proba(raw_features(tuned.data, "val"))[:, 1]
    expected = choose_threshold(tuned.data.y_val, prob, ThresholdConfig(objective="balanced_accuracy"))
    assert tuned.best_bundle.threshold == pytest.approx(expected, abs=1e-5)


def test_optuna_backend_same_space_same_result_shape(tmp_path) -> None:
    exp = _exp("breast_cancer", tmp_path, "search.backend=optuna", "search.num_samples=3", "search.cohort_size=1")
    result = run_search(exp, progress=False)
    assert result.backend == "optuna" and len(result.trials) == 3 and result.best_bundle is not None
    # resume is a no-op once all trials ended: exactly the requested count
    again = run_search(exp, name=result.name, resume=True, progress=False)
    assert len(again.trials) == 3
