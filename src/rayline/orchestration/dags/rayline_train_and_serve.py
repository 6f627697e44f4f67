"""Train a model on a Ray cluster, then serve it on another: Rayline's main workflow.

```
check_training_input -> create_training_cluster (setup)
    -> request_serving_cluster (setup) -> train
    -> delete_training_cluster (teardown)
train -> create_serving_cluster (setup) -> deploy -> verify_endpoint
    -> delete_serving_cluster_unless_served (teardown) -> record_run
```

- The serving cluster is requested as soon as the training cluster is READY and
  starts while the model trains; ``create_serving_cluster`` takes it over (or
  requests a new one if it failed) once training succeeded. Provisioning it is
  then off the critical path (about 10 s of the run on a small host) at the
  price of holding both clusters while training runs; requesting it only once
  the training cluster is gone would cost a whole provisioning. A failed
  training run deletes the early cluster too.
- The training cluster is sized from the training spec
  (`rayline.training.resources.training_cluster_shape`: a 4-worker spec gets a
  cluster that places 4 workers); the ``training_cluster`` param may set its
  ``head``, ``worker`` and ``worker_count`` instead.
- A spec or dataset that fails the checks needing no cluster (a wrong target, say)
  fails ``check_training_input``, before any cluster is requested.
- The training cluster is deleted by its teardown whether training succeeded or not.
- A serving cluster is its model's home: the requests carry the model's name,
  and the Cluster Manager answers them with the model's live serving cluster
  when it has one, so a retrain deploys the new version on the cluster (and
  Serve port) of the one it replaces; only a model's first deployment starts
  (or takes from the warm pool) a serving cluster.
- The serving cluster stays up when the endpoint answered (the model stays served
  until `rayline down`); when the deploy or the check failed, its teardown deletes
  it if this run made it, so a failed run leaves no cluster behind and a failed
  retrain leaves the model's cluster serving the version before. A serving
  cluster whose deployments were replaced elsewhere is released by the deploy,
  and one that backs no deployment for ``RAYLINE_SERVING_IDLE_SECONDS`` is
  reaped by the Cluster Manager.
- A training retry whose cluster died (its head was killed, say) gets a
  replacement cluster with the same spec; the same teardown deletes it.
- Every task try is recorded in the metadata store (`rayline.orchestration.recording`);
  `record_run` closes the run record and returns it with per-step timings.

Params (validated before the run starts against JSON schemas generated from the
pydantic models): ``training`` (the training spec), ``training_cluster``,
``serving`` (port, deploy arguments, a sample request) and ``serving_cluster``;
see `rayline.orchestration.params`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from airflow.sdk import DAG, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from rayline.orchestration import recording
from rayline.orchestration.operators.clusters import (
    CreateRayClusterOperator,
    DeleteRayClusterOperator,
)
from rayline.orchestration.operators.deploy import DeployModelOperator
from rayline.orchestration.operators.train import TrainModelOperator
from rayline.orchestration.params import dag_params

DAG_ID = "rayline_train_and_serve"

# Exponential backoff for tasks where trying again can help (a cluster that failed
# to start, a job whose cluster died, a manager restarting, an endpoint warming up).
# Bad input (an invalid spec, a job's exit code 2) and failures that repeat (a
# serving image that cannot be built) fail their task without retries: the train
# and deploy operators raise AirflowFailException for them.

# Ray's job API answers a status request in milliseconds: look every second, so a
# finished job is noticed within a second rather than half a poll interval later.
_JOB_POLL_SECONDS = 1.0
# Follow a job on the worker this long before deferring it to the triggerer: the
# demo's training and deploy jobs end well within it, and a deferred task costs
# seconds more to resume (the triggerer, the scheduler, a new task process) than
# holding one worker slot for a short job does.
_DEFER_AFTER_SECONDS = 60.0

_RETRYING: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=2),
}


@task(retries=0)
def check_training_input() -> None:
    """Refuse a bad spec or dataset before any cluster is requested; no retry helps."""
    from rayline.training.errors import DatasetError, InvalidSpecError
    from rayline.training.prechecks import check_training_input as check

    try:
        check(get_current_context()["params"]["training"])
    except (InvalidSpecError, DatasetError) as err:
        raise AirflowFailException(f"{type(err).__name__}: {err}") from None


@task(retries=4, retry_delay=timedelta(seconds=3), retry_exponential_backoff=True)
def verify_endpoint(deployed: dict[str, Any]) -> dict[str, Any]:
    """Send the sample request to the served model; fail unless predictions come back."""
    params = get_current_context()["params"]
    url = f"{deployed['endpoint_url'].rstrip('/')}/v1/models/{deployed['model']}:predict"
    response = httpx.post(url, json=params["serving"]["sample_request"], timeout=30)
    if response.status_code != 200:
        raise AirflowException(f"{url} answered HTTP {response.status_code}: {response.text[:500]}")
    predictions = response.json().get("predictions")
    if not predictions:
        raise AirflowException(f"{url} answered without predictions: {response.text[:500]}")
    return {
        "endpoint_url": deployed["endpoint_url"],
        "model": deployed["model"],
        "version": deployed["version"],
        "deployment_id": deployed.get("deployment_id"),
        "predictions": predictions,
    }


@task(retries=2, retry_delay=timedelta(seconds=5))
def record_run() -> dict[str, Any]:
    """Close the workflow run record; return it with per-step timings."""
    return recording.finish_run(get_current_context())


with DAG(
    dag_id=DAG_ID,
    description="Train a model on a Ray cluster and serve it on another",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=4,
    params=dag_params(),
    default_args=dict(recording.STEP_CALLBACKS),
    on_failure_callback=recording.run_failed,
    # Params and XComs render to dicts and ints, not their string forms.
    render_template_as_native_obj=True,
    doc_md=__doc__,
    tags=["rayline"],
) as dag:
    create_training = CreateRayClusterOperator(
        task_id="create_training_cluster",
        spec="{{ params.training_cluster }}",
        # Sized for the spec's workers unless the training_cluster param says otherwise.
        training_spec="{{ params.training }}",
        **_RETRYING,
    )
    train = TrainModelOperator(
        task_id="train",
        cluster=create_training.output,
        spec="{{ params.training }}",
        poll_interval=_JOB_POLL_SECONDS,
        defer_after=_DEFER_AFTER_SECONDS,
        **_RETRYING,
    )
    # Only the request: the manager tears the training cluster down while serving
    # goes on. confirm_training_teardown waits for it to end, after the endpoint
    # answered, so a teardown that fails still fails the run.
    delete_training = DeleteRayClusterOperator(
        task_id="delete_training_cluster",
        created_by="create_training_cluster",
        wait_for_termination=False,
        **_RETRYING,
    )
    confirm_training_teardown = DeleteRayClusterOperator(
        task_id="confirm_training_teardown",
        created_by="create_training_cluster",
        trigger_rule="all_done",
        **_RETRYING,
    )
    # Only the request: the cluster starts while the model trains.
    request_serving = CreateRayClusterOperator(
        task_id="request_serving_cluster",
        spec="{{ params.serving_cluster }}",
        model="{{ params.training.name }}",
        wait_for_ready=False,
        **_RETRYING,
    )
    create_serving = CreateRayClusterOperator(
        task_id="create_serving_cluster",
        spec="{{ params.serving_cluster }}",
        model="{{ params.training.name }}",
        adopt_from="request_serving_cluster",
        **_RETRYING,
    )
    deploy = DeployModelOperator(
        task_id="deploy",
        cluster=create_serving.output,
        model="{{ params.training.name }}",
        # The version the training job registered: an int through XCom.
        version="{{ ti.xcom_pull(task_ids='train', key='job_result')['version'] }}",
        port="{{ params.serving.get('port') }}",
        serving_spec="{{ params.serving.get('spec') or {} }}",
        mode="{{ params.serving.get('mode') }}",
        labels="{{ params.serving.get('labels') or {} }}",
        poll_interval=_JOB_POLL_SECONDS,
        defer_after=_DEFER_AFTER_SECONDS,
        **{**_RETRYING, "retries": 1},
    )
    verified = verify_endpoint(deploy.output)  # type: ignore[arg-type]  # resolved at run time
    delete_serving = DeleteRayClusterOperator(
        task_id="delete_serving_cluster_unless_served",
        created_by=["request_serving_cluster", "create_serving_cluster"],
        keep_if_succeeded=["verify_endpoint"],
        **_RETRYING,
    )
    recorded = record_run()

    # The request goes out right before training (in this order under dag.test() too,
    # which runs one task at a time), after the training cluster took its start slot.
    check_training_input() >> create_training >> request_serving >> train
    train >> delete_training.as_teardown(setups=create_training)
    # Serve only a model that trained.
    train >> create_serving >> deploy >> verified
    verified >> delete_serving.as_teardown(setups=[request_serving, create_serving])
    [verified, delete_training] >> confirm_training_teardown
    [verified, confirm_training_teardown, delete_serving] >> recorded
