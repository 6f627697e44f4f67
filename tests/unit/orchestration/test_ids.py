"""Names derived from a task try: deterministic, distinct per try, valid for Ray and the manager."""

from __future__ import annotations

import re

import pytest

from rayline.clusters.schemas import NAME_PATTERN, REQUEST_ID_PATTERN
from rayline.orchestration import ids

KEY = ids.TaskKey(
    dag_id="rayline_train_and_serve",
    run_id="manual__2026-01-02T03:04:05.678901+00:00",
    task_id="train",
    try_number=1,
)


def test_submission_id_is_readable_and_deterministic() -> None:
    first = ids.submission_id(KEY)
    assert first == ids.submission_id(KEY.with_try(1))
    assert re.fullmatch(r"af-rayline_train_and_serve-train-[0-9a-f]{12}-t1", first)


def test_each_try_gets_its_own_submission_id_and_request_id() -> None:
    assert ids.submission_id(KEY) != ids.submission_id(KEY.with_try(2))
    assert ids.submission_id(KEY.with_try(2)).endswith("-t2")
    assert ids.cluster_request_id(KEY) != ids.cluster_request_id(KEY.with_try(2))


@pytest.mark.parametrize(
    "changed",
    [
        {"dag_id": "other"},
        {"run_id": "manual__2026-01-02T03:04:05.678902+00:00"},
        {"task_id": "deploy"},
        {"map_index": 3},
    ],
)
def test_another_run_task_or_map_index_gets_another_id(changed: dict[str, object]) -> None:
    fields = {"dag_id": KEY.dag_id, "run_id": KEY.run_id, "task_id": KEY.task_id, "try_number": 1}
    other = ids.TaskKey(**{**fields, **changed})  # type: ignore[arg-type]
    assert ids.submission_id(other) != ids.submission_id(KEY)


def test_odd_and_long_names_still_give_valid_ids() -> None:
    key = ids.TaskKey(
        dag_id="Team A / nightly: élan" * 5,
        run_id="scheduled__2026-01-02T00:00:00+00:00",
        task_id="group.sub-task with spaces" * 5,
        try_number=12,
    )
    submission = ids.submission_id(key)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", submission)
    assert re.fullmatch(REQUEST_ID_PATTERN, ids.cluster_request_id(key))
    name = ids.cluster_name(key)
    assert re.fullmatch(NAME_PATTERN, name) and len(name) <= 63
    assert name.endswith("-t12")


def test_run_labels_tie_a_cluster_to_its_run_and_task_for_every_try() -> None:
    labels = ids.run_labels(KEY)
    assert labels == ids.run_labels(KEY.with_try(5))
    assert labels == {
        ids.LABEL_DAG: "rayline_train_and_serve",
        ids.LABEL_RUN: KEY.run_hash(),
        ids.LABEL_TASK: "train",
    }
    assert all(len(v) <= 63 for v in labels.values())


def test_from_context_reads_the_task_instance() -> None:
    class TI:
        dag_id, run_id, task_id, try_number, map_index = "d", "r", "t", 3, None

    key = ids.TaskKey.from_context({"ti": TI()})
    assert (key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index) == (
        "d",
        "r",
        "t",
        3,
        -1,
    )


def test_made_in_run_tells_this_runs_clusters_from_another_runs() -> None:
    key = ids.TaskKey(dag_id="d", run_id="r1", task_id="create", try_number=2)
    other_task = ids.TaskKey(dag_id="d", run_id="r1", task_id="request", try_number=1)
    other_run = ids.TaskKey(dag_id="d", run_id="r2", task_id="create", try_number=1)
    assert ids.made_in_run(ids.run_labels(other_task), key)
    assert not ids.made_in_run(ids.run_labels(other_run), key)
    assert not ids.made_in_run({}, key)
