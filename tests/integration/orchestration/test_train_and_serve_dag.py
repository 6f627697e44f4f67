"""The real rayline_train_and_serve DAG through ``dag.test()``: a good run and a failing one.

A good run trains, deletes the training cluster, serves the model on a serving
cluster that stays up, and answers the sample request. When training fails on
bad input (a dataset that does not exist), the task fails without retrying (the
job exits 2), the teardown deletes the training cluster, no serving cluster is
ever requested, the run fails with the reason in the run record, and no cluster
is left running.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rayline.config import get_settings
from rayline.metadata.db import create_engine_for, session_scope
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.models import WorkflowRun, WorkflowStep
from rayline.orchestration.embedded import run_dag
from rayline.orchestration.params import DEFAULT_TRAINING
from tests.integration.manager import ManagerProcess

pytestmark = pytest.mark.integration


def test_failing_training_fails_the_run_and_leaves_no_cluster(manager: ManagerProcess) -> None:
    from rayline.orchestration.dags.rayline_train_and_serve import dag

    spec = {**DEFAULT_TRAINING, "dataset": "file:///nonexistent/rayline-test/data.csv"}
    run = run_dag(dag, run_conf={"training": spec})

    assert run.state == "failed"
    clusters = manager.client().list_clusters().data
    assert clusters  # (more than one when a cluster failed to start and a retry made another)
    assert all(c.purpose == "training" for c in clusters)  # serving never requested
    assert all(c.state.is_terminal() for c in clusters)
    engine = create_engine_for(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            record = session.scalars(
                select(WorkflowRun).where(WorkflowRun.external_run_id == run.run_id)
            ).one()
            steps = list(
                session.scalars(select(WorkflowStep).where(WorkflowStep.run_id == record.id))
            )
            assert record.status == WorkflowStatus.FAILED
            assert (record.error or "").startswith("task train failed")
            (train,) = [s for s in steps if s.name == "train"]  # bad input: not retried
            assert train.status == WorkflowStatus.FAILED
            # The job's own reason reaches the step and the run record.
            for error in (train.error or "", record.error or ""):
                assert "the job said:" in error
                assert "/nonexistent/rayline-test/data.csv" in error
            teardown = [s for s in steps if s.name == "delete_training_cluster"]
            assert [s.status for s in teardown] == [WorkflowStatus.SUCCESS]
    finally:
        engine.dispose()


def test_the_dag_trains_serves_and_keeps_the_model_served(
    manager: ManagerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rayline.orchestration.dags.rayline_train_and_serve import dag

    # Ray Serve on the serving cluster: no container to clean up after the test.
    monkeypatch.setenv("RAYLINE_SERVING_MODE", "ray")
    get_settings.cache_clear()

    run = run_dag(dag)

    assert run.state == "success"
    live = [c for c in manager.client().list_clusters().data if not c.state.is_terminal()]
    assert [c.purpose for c in live] == ["serving"]  # training deleted, serving kept
    endpoints = manager.client().live_endpoints("iris").data
    assert [e.cluster_id for e in endpoints] == [live[0].id]
    engine = create_engine_for(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            record = session.scalars(
                select(WorkflowRun).where(WorkflowRun.external_run_id == run.run_id)
            ).one()
            steps = {
                s.name: s
                for s in session.scalars(
                    select(WorkflowStep).where(WorkflowStep.run_id == record.id)
                )
            }
            assert record.status == WorkflowStatus.SUCCESS
            assert steps["train"].model_version_id is not None
            assert steps["deploy"].deployment_id is not None
            assert steps["deploy"].cluster_id == live[0].id
            assert steps["verify_endpoint"].details["outcome"]["predictions"]
    finally:
        engine.dispose()
