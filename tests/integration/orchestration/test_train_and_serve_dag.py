"""The real rayline_train_and_serve DAG through ``dag.test()``: a failing run.

(Good runs, checked with `checks.assert_served_run`, are the fault tests' runs in
test_train_and_serve_faults.py, and ``make demo``.) When training fails on
bad input (a dataset that does not exist), the task fails without retrying (the
job exits 2), the teardowns delete the training cluster and the serving cluster
requested early (it started while the model trained), the run fails with the
reason in the run record, and no cluster is left running.
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
from tests.integration.clusters.leaks import assert_no_ray_left
from tests.integration.manager import ManagerProcess

pytestmark = pytest.mark.integration


def test_failing_training_fails_the_run_and_leaves_no_cluster(manager: ManagerProcess) -> None:
    from rayline.orchestration.dags.rayline_train_and_serve import dag

    spec = {**DEFAULT_TRAINING, "dataset": "file:///nonexistent/rayline-test/data.csv"}
    run = run_dag(dag, run_conf={"training": spec})

    assert run.state == "failed"
    clusters = manager.client().list_clusters().data
    assert clusters  # (more than one when a cluster failed to start and a retry made another)
    purposes = [c.purpose for c in clusters]
    assert "training" in purposes and purposes.count("serving") <= 1  # never taken over
    assert all(c.state.is_terminal() for c in clusters)
    assert_no_ray_left(*(c.id for c in clusters))  # no process, no temp dir
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
            for name in (
                "delete_training_cluster",
                "confirm_training_teardown",
                "delete_serving_cluster_unless_served",
            ):
                teardown = [s for s in steps if s.name == name]
                assert [s.status for s in teardown] == [WorkflowStatus.SUCCESS], name
    finally:
        engine.dispose()


def test_a_wrong_target_fails_before_any_cluster_is_requested(manager: ManagerProcess) -> None:
    from rayline.orchestration.dags.rayline_train_and_serve import dag

    before = {c.id for c in manager.client().list_clusters().data}
    run = run_dag(dag, run_conf={"training": {**DEFAULT_TRAINING, "target": "species"}})

    assert run.state == "failed"
    assert {c.id for c in manager.client().list_clusters().data} == before
    engine = create_engine_for(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            record = session.scalars(
                select(WorkflowRun).where(WorkflowRun.external_run_id == run.run_id)
            ).one()
            query = select(WorkflowStep).where(WorkflowStep.run_id == record.id)
            steps = {s.name: s for s in session.scalars(query)}
            assert record.status == WorkflowStatus.FAILED
            check = steps["check_training_input"]
            assert check.status == WorkflowStatus.FAILED
            assert "'species'" in (check.error or "")
            assert "train" not in steps or steps["train"].status != WorkflowStatus.SUCCESS
    finally:
        engine.dispose()
