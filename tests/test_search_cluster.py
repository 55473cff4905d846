"""A real multi-node Ray cluster (ray.cluster_utils.Cluster): trials spread over nodes,
and a worker node removed mid-search leaves every trial accounted for."""

from __future__ import annotations

import threading

import pytest

from search import load_experiment, run_search
from search.result import TrialRecord

pytestmark = pytest.mark.slow


class RemoveWorkerAfter:
    """Observer that kills the worker node once ``n`` trials have ended."""

    def __init__(self, cluster, node, n: int) -> None:
        self.cluster, self.node, self.n = cluster, node, n
        self.ended: list[TrialRecord] = []
        self.removed = threading.Event()

    def on_search_start(self, *args, **kwargs) -> None:
        pass

    def on_trial_end(self, record: TrialRecord) -> None:
        self.ended.append(record)
        if len(self.ended) == self.n and not self.removed.is_set():
            threading.Thread(target=self._remove, daemon=True).start()

    def _remove(self) -> None:
        self.cluster.remove_node(self.node, allow_graceful=False)
        self.removed.set()


def test_multi_node_search_survives_worker_loss(tmp_path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address)
        exp = load_experiment(
            "breast_cancer",
            overrides=[
                f"search.storage_path={tmp_path}",
                "search.num_samples=8",
                "search.max_failures=3",
                "search.scheduler.name=none",
                "space.epochs={type: int, low: 20, high: 40}",
            ],
        )
        killer = RemoveWorkerAfter(cluster, worker, n=3)
        result = run_search(exp, observers=[killer], progress=True)
        assert killer.removed.is_set()
        assert len(result.trials) == 8 and sum(result.counts().values()) == 8
        assert len({t.trial_id for t in result.trials}) == 8
        nodes = {t.node_id for t in result.trials if t.node_id}
        assert len(nodes) >= 2, f"trials ran on {nodes}"
        assert result.counts()["finished"] >= 7  # trials lost with the node were retried elsewhere
        assert result.best_bundle is not None
    finally:
        ray.shutdown()
        cluster.shutdown()
