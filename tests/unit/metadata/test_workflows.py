"""Workflow runs and steps: start, retry, finish, link what a step produced."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.errors import WorkflowRunNotFoundError, WorkflowStepNotFoundError
from rayline.metadata.registry import ModelRegistry
from rayline.metadata.workflows import finish_run, finish_step, start_run, start_step

DAG = "rayline_train_and_serve"


def test_start_run_is_idempotent_per_airflow_run(engine: Engine) -> None:
    first = start_run(engine, dag_id=DAG, external_run_id="manual__1", params={"model": "iris"})
    finish_run(engine, first.id, status=WorkflowStatus.FAILED, error="cluster lost")

    again = start_run(engine, dag_id=DAG, external_run_id="manual__1")
    other = start_run(engine, dag_id=DAG, external_run_id="manual__2")

    assert again.id == first.id != other.id
    assert again.status is WorkflowStatus.RUNNING
    assert (again.error, again.finished_at) == (None, None)
    assert again.params == {"model": "iris"}


def test_finish_run(engine: Engine) -> None:
    run = start_run(engine, dag_id=DAG, external_run_id="r")

    done = finish_run(engine, run.id, status=WorkflowStatus.SUCCESS)

    assert done.status is WorkflowStatus.SUCCESS
    assert done.started_at is not None and done.finished_at is not None
    assert done.started_at <= done.finished_at


def test_steps_record_tries_and_links(engine: Engine) -> None:
    run = start_run(engine, dag_id=DAG, external_run_id="r")
    version = ModelRegistry().register_version(
        engine, name="iris", artifact_uri="file:///m", sha256="0" * 64, workflow_run_id=run.id
    )
    first = start_step(engine, run.id, name="train", details={"cluster_size": 2})
    finish_step(engine, first.id, status=WorkflowStatus.FAILED, error="OOM")
    second = start_step(engine, run.id, name="train", try_number=2)

    done = finish_step(
        engine,
        second.id,
        status=WorkflowStatus.SUCCESS,
        details={"job_id": "raysubmit_1"},
        model_version_id=version.id,
    )

    assert (done.try_number, done.status, done.model_version_id) == (
        2,
        WorkflowStatus.SUCCESS,
        version.id,
    )
    assert done.details == {"job_id": "raysubmit_1"}
    assert done.finished_at is not None


def test_finish_step_merges_details(engine: Engine) -> None:
    run = start_run(engine, dag_id=DAG, external_run_id="r")
    step = start_step(engine, run.id, name="deploy", details={"port": 8000})

    done = finish_step(engine, step.id, status=WorkflowStatus.SUCCESS, details={"image": "x:1"})

    assert done.details == {"port": 8000, "image": "x:1"}


def test_finishing_with_a_non_final_status_is_refused(engine: Engine) -> None:
    run = start_run(engine, dag_id=DAG, external_run_id="r")

    with pytest.raises(ValueError, match="success or failed"):
        finish_run(engine, run.id, status=WorkflowStatus.RUNNING)


def test_unknown_run_and_step(engine: Engine) -> None:
    with pytest.raises(WorkflowRunNotFoundError):
        finish_run(engine, 404, status=WorkflowStatus.SUCCESS)
    with pytest.raises(WorkflowRunNotFoundError):
        start_step(engine, 404, name="train")
    with pytest.raises(WorkflowStepNotFoundError):
        finish_step(engine, 404, status=WorkflowStatus.SUCCESS)
