"""A small DAG for the integration tests: cluster setup -> one Ray job -> cluster teardown.

The job is a plain ``python -c`` entrypoint given as a param, so these tests need
neither the training nor the deploy job.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from rayline.orchestration import recording
from rayline.orchestration.operators.clusters import (
    CreateRayClusterOperator,
    DeleteRayClusterOperator,
)
from rayline.orchestration.operators.ray_job import SubmitRayJobOperator

DAG_ID = "rayline_ray_job_smoke"


@task
def finish() -> dict[str, Any]:
    """Close the run record, like the main DAG's record_run."""
    return recording.finish_run(get_current_context())


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"entrypoint": Param("python -c 'print(42)'", type="string", minLength=1)},
    default_args=dict(recording.STEP_CALLBACKS),
    on_failure_callback=recording.run_failed,
    render_template_as_native_obj=True,
) as dag:
    create = CreateRayClusterOperator(
        task_id="create_cluster",
        spec={"purpose": "training", "head": {"cpus": 1}, "ttl_seconds": 900},
        # A loaded machine may fail to start a cluster in time; a retry gets a new one.
        retries=1,
        retry_delay=timedelta(seconds=2),
    )
    job = SubmitRayJobOperator(
        task_id="run_job",
        cluster=create.output,
        entrypoint="{{ params.entrypoint }}",
        poll_interval=1,
    )
    delete = DeleteRayClusterOperator(task_id="delete_cluster", created_by="create_cluster")
    create >> job >> delete.as_teardown(setups=create)
    [job, delete] >> finish()
