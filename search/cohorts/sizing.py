"""How many trials one cohort holds (``cohort_size: auto``) and how many slots a small search starts.

Both are estimates of cost in multiply-adds (:func:`tunefleet.cohort_plan.cohort_cost`),
read from the space's bounds and the data's shape; no torch.
"""

from __future__ import annotations

import itertools
import math

from tunefleet.cohort_plan import cohort_cost
from tunefleet.datasets import n_outputs_for
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.splits import PreparedData
from tunefleet.train_config import TrainConfig

CPU_WORK_LIMIT = 2e7  # multiply-adds per member-epoch above which a CPU gains little from batching
CPU_MAX_K, GPU_MAX_K = (
    32,
    128,
)  # members a cohort holds (the 256-trial benchmark search: K=16 19-20 s, K=64 16-18 s, K=32 9-19 s)


def cohort_cap(exp: ExperimentConfig, data: PreparedData, gpu: bool) -> int:
    """The most trials one cohort trains (``cohort_size``: K, or ``auto``), their CV folds counted as members.

    A member's cost per epoch is about (parameters x training rows) of the widest net the
    space allows: on a CPU, batching removes per-step overhead, which matters only while
    that arithmetic is small (breast_cancer: 9e6); MNIST-sized inputs (6e8) are
    compute-bound already, so one trial a cohort. A GPU is busy only with many members.
    """
    if isinstance(exp.search.cohort_size, int):
        return exp.search.cohort_size
    space, members = exp.space, len(data.folds) or 1
    dims = [data.n_features, *([space["width"].largest()] * space["n_layers"].largest()), n_outputs_for(data.n_classes)]
    work = sum(a * b for a, b in itertools.pairwise(dims)) * len(data.y_train)
    if not gpu and work > CPU_WORK_LIMIT:
        return 1
    return max(1, (GPU_MAX_K if gpu else CPU_MAX_K) // members)


# A Ray worker's start with torch's import (3.7-4.3 CPU-s per worker here), in
# cohort_cost's multiply-adds (STEP_OVERHEAD's ~4e9 a second).
WORKER_START = 1.6e10


def slots_worth_starting(exp: ExperimentConfig, data: PreparedData, slots: int) -> int:
    """How many of ``slots`` a search on its own local Ray uses: no more than its training pays for.

    Each slot is a worker process that starts and imports torch first. A smoke search
    trains for a fraction of that (``sign --smoke``: ~0.3 s by the bound below, against
    ~4 CPU-s per worker), so its second worker only took a core from the driver: with one,
    the search used 4-5 CPU-s less (see the README's fixed-cost section). The bound is
    generous: every trial alone at the widest net, the most epochs and the smallest
    batch the space allows.
    """
    space = exp.space
    widest = TrainConfig(
        hidden_widths=(space["width"].largest(),) * space["n_layers"].largest(),
        epochs=space["epochs"].largest(),
        batch_size=space["batch_size"].smallest(),
    )
    bound = exp.search.num_samples * cohort_cost([widest], *cost_shape(data))
    return max(1, min(slots, math.ceil(bound / WORKER_START)))


def cost_shape(data: PreparedData) -> tuple[int, int, int]:
    """What :func:`tunefleet.cohort_plan.cohort_cost` reads of the data: training rows, features, outputs."""
    return len(data.y_train), data.n_features, n_outputs_for(data.n_classes)
