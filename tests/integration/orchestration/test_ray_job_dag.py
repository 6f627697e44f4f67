"""A DAG run through ``dag.test()`` against a real Cluster Manager starting a real Ray cluster.

Create cluster (setup) -> submit a ``python -c`` job, followed by the deferrable
trigger (run inline by ``dag.test()``) -> delete cluster (teardown). After each
run, succeeding or failing, no cluster is live, and every step is recorded.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from sqlalchemy import select

from rayline.config import get_settings
from rayline.metadata.db import create_engine_for, session_scope
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.models import WorkflowRun, WorkflowStep
from rayline.orchestration.embedded import run_dag
from tests.integration.manager import ManagerProcess

pytestmark = pytest.mark.integration


def _entrypoint(code: str) -> str:
    return shlex.join(["python", "-c", code])


def _steps(run_id: str) -> tuple[WorkflowRun, list[WorkflowStep]]:
    engine = create_engine_for(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            run = session.scalars(
                select(WorkflowRun).where(WorkflowRun.external_run_id == run_id)
            ).one()
            steps = list(session.scalars(select(WorkflowStep).where(WorkflowStep.run_id == run.id)))
            session.expunge_all()
            return run, steps
    finally:
        engine.dispose()


def _live_clusters(manager: ManagerProcess) -> list[Any]:
    return [c for c in manager.client().list_clusters().data if not c.state.is_terminal()]


def test_job_succeeds_and_teardown_deletes_the_cluster(manager: ManagerProcess) -> None:
    from tests.integration.orchestration.ray_job_dag import dag

    code = "import json; print('working'); print('RAYLINE_RESULT', json.dumps({'answer': 42}))"
    run = run_dag(dag, run_conf={"entrypoint": _entrypoint(code)})

    assert run.state == "success"
    assert _live_clusters(manager) == []
    record, steps = _steps(run.run_id)
    assert record.status == WorkflowStatus.SUCCESS
    by_name = {s.name: s for s in steps}
    assert set(by_name) == {"create_cluster", "run_job", "delete_cluster", "finish"}
    assert all(s.status == WorkflowStatus.SUCCESS for s in steps)
    job = by_name["run_job"].details["outcome"]
    assert job["status"] == "SUCCEEDED"
    assert job["result"] == {"answer": 42}
    assert job["submission_id"].endswith("-t1")
    # The steps are linked to the cluster the Cluster Manager recorded.
    cluster_id = by_name["create_cluster"].cluster_id
    assert cluster_id is not None
    assert by_name["run_job"].cluster_id == cluster_id
    assert manager.client().get_cluster(cluster_id).state == "TERMINATED"


def test_failing_job_fails_the_run_and_teardown_still_deletes_the_cluster(
    manager: ManagerProcess,
) -> None:
    from tests.integration.orchestration.ray_job_dag import dag

    code = "import sys; print('about to fail'); sys.exit('bad input: no rows')"
    run = run_dag(dag, run_conf={"entrypoint": _entrypoint(code)})

    assert run.state == "failed"
    assert _live_clusters(manager) == []
    record, steps = _steps(run.run_id)
    by_name = {s.name: s for s in steps}
    assert by_name["run_job"].status == WorkflowStatus.FAILED
    assert "FAILED" in (by_name["run_job"].error or "")
    assert by_name["delete_cluster"].status == WorkflowStatus.SUCCESS
    assert "finish" not in by_name  # upstream failed: never ran
    assert record.status == WorkflowStatus.FAILED
    assert "run_job" in (record.error or "")
    json.dumps(by_name["run_job"].details)  # details stay JSON


@pytest.mark.parametrize("check_fails", [False, True])
def test_teardown_keeps_the_cluster_only_when_the_check_succeeded(
    manager: ManagerProcess, check_fails: bool
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tests.integration.orchestration.keep_dag import dag

    run = run_dag(dag, run_conf={"fail": check_fails})

    assert run.state == ("failed" if check_fails else "success")
    query = XComModel.get_many(
        run_id=run.run_id, key="return_value", dag_ids=dag.dag_id, task_ids="delete_unless_verified"
    )
    with create_session() as session:
        deleted = session.scalars(query).one()
        assert XComModel.deserialize_value(deleted) == (["rc-imaginary"] if check_fails else [])
