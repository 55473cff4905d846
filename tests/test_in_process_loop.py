"""The in-process loop (--backend optuna, one trial at a time): threshold modes, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    assert tuned.best is not None and tuned.best.bundle_dir
    from tunefleet.bundle import ModelBundle
    from tunefleet.candidates import validation_labels
    from tunefleet.search.result import PREDICTIONS
    from tunefleet.thresholds import ThresholdConfig, choose_threshold

    trial = ModelBundle.load(tuned.best.bundle_dir)  # chosen on its out-of-fold predictions (5 folds: auto)
    oof = np.load(Path(tuned.best.bundle_dir) / PREDICTIONS)
    expected = choose_threshold(validation_labels(tuned.data), oof, ThresholdConfig(objective="balanced_accuracy"))
    assert len(tuned.data.folds) == 5 and trial.threshold == pytest.approx(expected, abs=1e-9)


def test_optuna_backend_same_space_same_result_shape(tmp_path) -> None:
    exp = _exp("breast_cancer", tmp_path, "search.backend=optuna", "search.num_samples=3", "search.cohort_size=1")
    result = run_search(exp, progress=False)
    assert result.backend == "optuna" and len(result.trials) == 3 and result.best_bundle is not None
    # resume is a no-op once all trials ended: exactly the requested count
    again = run_search(exp, name=result.name, resume=True, progress=False)
    assert len(again.trials) == 3
