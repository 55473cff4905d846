"""The search's figures, drawn by a child process from the numbers the driver sends it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tunefleet.errors import TunefleetError
from tunefleet.evaluation import SplitScores
from tunefleet.search.result import TrialRecord
from tunefleet.train import train_one
from tunefleet.train_config import TrainConfig

pytestmark = pytest.mark.integration  # a real child process per test

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def searched(breast_cancer_data) -> tuple[list[TrialRecord], TrialRecord, SplitScores]:
    """Two real trials of breast_cancer and the better one's test scores."""
    data = breast_cancer_data
    trials, bundles = [], []
    for i, (lr, widths) in enumerate([(0.01, (8,)), (0.003, ())]):
        params = {"lr": lr, "batch_size": 32, "n_layers": len(widths), "epochs": 4, "weight_decay": 1e-4}
        config = TrainConfig(lr=lr, hidden_widths=widths, epochs=4, batch_size=32, weight_decay=1e-4, seed=i)
        result = train_one(config, data)
        trials.append(TrialRecord(f"trial_{i}", params, config, "finished", result.metrics, result.history))
        bundles.append(result.bundle)
    best = max(range(len(trials)), key=lambda i: trials[i].metric("val_roc_auc"))
    return trials, trials[best], SplitScores.of(bundles[best], data, "test")


def test_the_child_draws_every_figure_and_the_importance_last(searched, tmp_path) -> None:
    from tunefleet.pipeline.figures import FigureData, FigureProcess

    trials, best, test = searched
    figures = FigureProcess()
    try:
        figures.draw(tmp_path / "plots", FigureData.of(trials, best, test, "val_roc_auc", "max"))
        figures.rank({"fanova": {"lr": 0.7, "n_layers": 0.3}})
        paths = figures.paths()
    finally:
        figures.close()
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "curves.png",
            "confusion_matrix.png",
            "calibration.png",
            "optimization_history.png",
            "parallel_coordinates.png",
            "roc.png",
            "precision_recall.png",
            "importance.png",
            "importance.json",
        ]
    )
    import matplotlib.image as mpimg
    import numpy as np

    for path in paths:
        assert path.parent == tmp_path / "plots" and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG
            pixels = mpimg.imread(path)[..., :3].reshape(-1, 3)
            assert pixels.shape[0] > 200 * 200 and len(np.unique(pixels, axis=0)) > 20, path.name  # drawn, not blank
    assert '"lr": 0.7' in (tmp_path / "plots" / "importance.json").read_text()


def test_the_figures_show_the_numbers_of_the_search(searched) -> None:
    """What the child draws, checked against independent computations: the confusion matrix counted
    row by row at the bundle's threshold, ROC and precision-recall from scikit-learn, each trial's
    value and learning rate from its record."""
    import numpy as np
    from sklearn.metrics import roc_curve

    from tunefleet.pipeline.figures import FigureData

    trials, best, test = searched
    d = FigureData.of(trials, best, test, "val_roc_auc", "max")
    predicted = (test.proba[:, 1] >= test.bundle.decision_threshold).astype(int)
    counted = np.zeros((2, 2), dtype=int)
    for truth, guess in zip(test.y, predicted, strict=True):
        counted[truth, guess] += 1
    assert (d.confusion == counted).all() and d.confusion.sum() == len(test.y)
    fpr, tpr, _ = roc_curve(test.y, test.proba[:, 1])
    assert d.roc is not None and np.array_equal(d.roc[0], fpr) and np.array_equal(d.roc[1], tpr)
    assert [p.value for p in d.trials] == [t.metric("val_roc_auc") for t in trials]
    assert [p.params["lr"] for p in d.trials] == [t.config.lr for t in trials]
    assert d.best_id == best.trial_id and d.history == best.history and d.threshold == test.bundle.decision_threshold


def test_a_failed_drawing_is_one_line_naming_the_cause(searched, tmp_path) -> None:
    from tunefleet.pipeline.figures import FigureData, FigureProcess

    trials, best, test = searched
    (tmp_path / "taken").write_text("a file where the figures' folder should go")
    figures = FigureProcess()
    try:
        figures.draw(tmp_path / "taken", FigureData.of(trials, best, test, "val_roc_auc", "max"))
        with pytest.raises(TunefleetError, match=r"drawing the search's figures failed: FileExistsError") as err:
            figures.paths()
    finally:
        figures.close()
    assert "\n" not in str(err.value) and "--verbose" in str(err.value)


def test_the_figures_child_imports_nothing_of_the_driver() -> None:
    """The child's import is what it costs beside the training: matplotlib and numpy only."""
    heavy = ["torch", "mlflow", "sklearn", "optuna", "ray", "pydantic", "scipy", "search"]
    code = f"import sys, tunefleet.pipeline.drawing; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
