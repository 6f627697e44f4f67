"""A DAG for the keep-or-delete teardown: keep the cluster only when the check succeeded.

No Ray cluster is started; the teardown asks a real Cluster Manager to delete a
cluster id it does not know, which is a no-op, or keeps it without asking.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowException

from rayline.orchestration.operators.clusters import DeleteRayClusterOperator

DAG_ID = "rayline_keep_or_delete"


@task
def reserve() -> str:
    return "rc-imaginary"


@task(retries=0)
def verify() -> None:
    if get_current_context()["params"]["fail"]:
        raise AirflowException("the endpoint did not answer")


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"fail": Param(False, type="boolean")},
) as dag:
    reserved = reserve()
    delete = DeleteRayClusterOperator(
        task_id="delete_unless_verified",
        cluster_id="{{ ti.xcom_pull(task_ids='reserve') }}",
        keep_if_succeeded=["verify"],
    )
    reserved >> verify() >> delete.as_teardown(setups=reserved)
