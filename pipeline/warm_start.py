"""``--warm-start``: earlier searches' finished and stopped trials of the same dataset and split, read
back from MLflow, as TPE's starting knowledge (:mod:`tunefleet.search.warm` checks them against the space)."""

from __future__ import annotations

import json
from typing import Any

import optuna

from tunefleet.pipeline.tracker import TAG_LAST_REPORT, TAG_OBJECTIVE, TAG_PARAMS, TAG_ROLE, TAG_STATUS
from tunefleet.search.experiment import ExperimentConfig
from tunefleet.search.warm import Earlier, warm_trials
from tunefleet.splits import PreparedData


def warm_start(client: Any, exp: ExperimentConfig, data: PreparedData, experiment_name: str) -> tuple[Any, ...]:
    """The trials TPE starts from (one line says how many, and how many the space dropped)."""
    candidates, searches = earlier_trials(client, experiment_name, exp.name, data.split_hash, exp.metric)
    trials, dropped = warm_trials(exp, data.task, candidates)
    stopped = sum(1 for t in trials if t.state == optuna.trial.TrialState.PRUNED)
    note = f"; {dropped} dropped: the current space cannot produce them" if dropped else ""
    print(
        f"warm start: {len(trials) - stopped} finished and {stopped} stopped trials from {searches} earlier searches "
        f"of {exp.name} on split {data.split_hash}{note}",
        flush=True,
    )
    return tuple(trials)


def earlier_trials(
    client: Any, experiment_name: str, dataset: str, split_hash: str, metric: str
) -> tuple[list[Earlier], int]:
    """Finished and stopped trials of earlier searches of this dataset and split, and how many searches."""
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
            f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`{TAG_STATUS}` != 'failed'",
            max_results=10000,
        )
        for child in children:
            earlier = _earlier(child.data.tags, metric)
            if earlier is not None:
                out.append(earlier)
    return out, len(parents)


def _earlier(tags: dict[str, str], metric: str) -> Earlier | None:
    """A trial's child run as TPE was told of it: finished with its metric, or stopped with its last report."""
    if TAG_PARAMS not in tags:
        return None
    params = json.loads(tags[TAG_PARAMS])
    if TAG_OBJECTIVE + metric in tags:
        return Earlier(params, float(tags[TAG_OBJECTIVE + metric]))
    if TAG_LAST_REPORT + metric in tags:
        epoch, value = json.loads(tags[TAG_LAST_REPORT + metric])
        return Earlier(params, float("nan") if value is None else float(value), int(epoch))
    return None
