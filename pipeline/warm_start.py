"""``--warm-start``: earlier searches' finished trials of the same dataset and split, read back
from MLflow, as TPE's starting knowledge (:mod:`tunefleet.search.warm` checks them against the space)."""

from __future__ import annotations

import json
from typing import Any

from tunefleet.pipeline.tracker import TAG_OBJECTIVE, TAG_PARAMS, TAG_ROLE, TAG_STATUS
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.warm import warm_trials
from tunefleet.splits import PreparedData


def warm_start(client: Any, exp: ExperimentConfig, data: PreparedData, experiment_name: str) -> tuple[Any, ...]:
    """The trials TPE starts from (one line says how many, and how many the space dropped)."""
    candidates, searches = earlier_trials(client, experiment_name, exp.name, data.split_hash, exp.metric)
    trials, dropped = warm_trials(exp, data.task, candidates)
    note = f"; {dropped} dropped: the current space cannot produce them" if dropped else ""
    print(
        f"warm start: {len(trials)} finished trials from {searches} earlier searches of {exp.name} "
        f"on split {data.split_hash}{note}",
        flush=True,
    )
    return tuple(trials)


def earlier_trials(
    client: Any, experiment_name: str, dataset: str, split_hash: str, metric: str
) -> tuple[list[tuple[dict[str, Any], float]], int]:
    """Finished trials (sampled params, ``metric``) of earlier searches of this dataset and split, and how many searches."""
    found = client.get_experiment_by_name(experiment_name)
    if found is None:
        return [], 0
    parents = client.search_runs(
        [found.experiment_id],
        f"tags.`{TAG_ROLE}` = 'search' and tags.dataset = '{dataset}' and tags.split_hash = '{split_hash}'",
        max_results=1000,
    )
    out = []
    for parent in parents:
        children = client.search_runs(
            [found.experiment_id],
            f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`{TAG_STATUS}` = 'finished'",
            max_results=10000,
        )
        for child in children:
            tags = child.data.tags
            if TAG_PARAMS in tags and TAG_OBJECTIVE + metric in tags:
                out.append((json.loads(tags[TAG_PARAMS]), float(tags[TAG_OBJECTIVE + metric])))
    return out, len(parents)
