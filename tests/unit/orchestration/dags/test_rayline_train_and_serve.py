"""The rayline_train_and_serve DAG file: structure, setup/teardown wiring, params, templates."""

from __future__ import annotations

import copy
import shlex
from typing import Any

import pytest
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import ParamValidationError

from rayline.clusters.pools import match, parse_pool_setting
from rayline.clusters.schemas import ClusterCreate
from rayline.clusters.serving_homes import MODEL_LABEL
from rayline.jobs.requests import TrainRequest
from rayline.orchestration import ids, recording
from rayline.orchestration.dags import rayline_train_and_serve as module
from rayline.orchestration.operators.clusters import CreateRayClusterOperator
from rayline.orchestration.operators.train import TrainModelOperator
from rayline.orchestration.params import DEFAULT_SERVING, DEFAULT_TRAINING
from rayline.training.resources import check_capacity
from rayline.training.spec import load_spec
from tests.unit.orchestration.fakes import FakeTI, context_for

dag = module.dag


def _task(task_id: str) -> BaseOperator:
    task = dag.get_task(task_id)
    assert isinstance(task, BaseOperator)
    return task


def test_dag_has_the_workflow_tasks() -> None:
    assert dag.dag_id == "rayline_train_and_serve"
    assert set(dag.task_ids) == {
        "check_training_input",
        "create_training_cluster",
        "train",
        "delete_training_cluster",
        "confirm_training_teardown",
        "request_serving_cluster",
        "create_serving_cluster",
        "deploy",
        "verify_endpoint",
        "delete_serving_cluster_unless_served",
        "record_run",
    }
    dag.validate()


@pytest.mark.parametrize(
    ("task_id", "upstream"),
    [
        ("check_training_input", set()),
        # Checks that need no cluster come before one is requested.
        ("create_training_cluster", {"check_training_input"}),
        # The serving cluster is requested before training starts (dag.test() runs
        # one task at a time), so it provisions while the model trains.
        ("request_serving_cluster", {"create_training_cluster"}),
        ("train", {"create_training_cluster", "request_serving_cluster"}),
        ("delete_training_cluster", {"create_training_cluster", "train"}),
        ("create_serving_cluster", {"train"}),
        ("deploy", {"create_serving_cluster"}),
        ("verify_endpoint", {"deploy"}),
        (
            "delete_serving_cluster_unless_served",
            {"request_serving_cluster", "create_serving_cluster", "verify_endpoint"},
        ),
        # The training cluster's teardown is checked after the endpoint answered.
        ("confirm_training_teardown", {"verify_endpoint", "delete_training_cluster"}),
        (
            "record_run",
            {
                "verify_endpoint",
                "confirm_training_teardown",
                "delete_serving_cluster_unless_served",
            },
        ),
    ],
)
def test_dependencies(task_id: str, upstream: set[str]) -> None:
    assert _task(task_id).upstream_task_ids == upstream


def test_clusters_are_setups_and_their_deletions_teardowns() -> None:
    assert _task("create_training_cluster").is_setup
    assert _task("create_serving_cluster").is_setup
    assert _task("request_serving_cluster").is_setup
    assert _task("request_serving_cluster").wait_for_ready is False  # type: ignore[attr-defined]
    assert _task("create_serving_cluster").adopt_from == "request_serving_cluster"  # type: ignore[attr-defined]
    # The serving teardown deletes what either task started (a failed run leaves none).
    assert _task("delete_serving_cluster_unless_served").created_by == [  # type: ignore[attr-defined]
        "request_serving_cluster",
        "create_serving_cluster",
    ]
    assert _task("delete_training_cluster").is_teardown
    # It only asks: serving goes on while the training cluster's processes stop.
    assert _task("delete_training_cluster").wait_for_termination is False  # type: ignore[attr-defined]
    assert _task("confirm_training_teardown").wait_for_termination is True  # type: ignore[attr-defined]
    assert _task("confirm_training_teardown").trigger_rule == "all_done"
    assert _task("delete_serving_cluster_unless_served").is_teardown
    assert not _task("train").is_setup and not _task("train").is_teardown
    # The serving cluster stays when the endpoint answered, goes when it did not.
    assert _task("delete_serving_cluster_unless_served").keep_if_succeeded == ("verify_endpoint",)  # type: ignore[attr-defined]
    # The only leaf is record_run, so a failed training or deployment fails the run.
    assert [t.task_id for t in dag.leaves] == ["record_run"]


def test_tasks_that_can_recover_retry_with_exponential_backoff() -> None:
    for task_id in (
        "create_training_cluster",
        "train",
        "delete_training_cluster",
        "request_serving_cluster",
        "create_serving_cluster",
        "deploy",
        "verify_endpoint",
    ):
        task = _task(task_id)
        assert task.retries >= 1, task_id
        assert task.retry_exponential_backoff, task_id


def test_every_task_records_its_steps() -> None:
    for task in dag.tasks:
        assert recording.step_started in task.on_execute_callback, task.task_id
        assert recording.step_succeeded in task.on_success_callback, task.task_id
        assert recording.step_failed in task.on_failure_callback, task.task_id
        assert recording.step_failed in task.on_retry_callback, task.task_id
    assert dag.on_failure_callback is recording.run_failed


def _validated(**conf: Any) -> dict[str, Any]:
    params = copy.deepcopy(dag.params)
    for key, value in conf.items():
        params[key] = value
    return params.validate()


def test_default_params_are_valid() -> None:
    values = _validated()
    assert values["training"] == DEFAULT_TRAINING
    assert values["serving"] == DEFAULT_SERVING
    assert _validated(serving={**DEFAULT_SERVING, "port": 8123})["serving"]["port"] == 8123
    assert values["training_cluster"]["purpose"] == "training"
    assert values["serving_cluster"]["purpose"] == "serving"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("training", {**DEFAULT_TRAINING, "framework": "tensorflow"}),
        ("training", {**DEFAULT_TRAINING, "epochs": 3}),
        ("training", {k: v for k, v in DEFAULT_TRAINING.items() if k != "target"}),
        ("training", {**DEFAULT_TRAINING, "dataset": "http://example.com/data.csv"}),
        ("training", {**DEFAULT_TRAINING, "workers": 0}),
        ("training_cluster", {"purpose": "serving"}),
        ("training_cluster", {"purpose": "training", "worker_count": -1}),
        ("training_cluster", {"purpose": "training", "head": {"cpu": 1}}),
        ("serving", {**DEFAULT_SERVING, "port": 0}),
        ("serving", {**DEFAULT_SERVING, "spec": {"replicas": 2}}),
        ("serving", {"deploy_args": []}),
        ("serving", {**DEFAULT_SERVING, "mode": "k8s"}),
        ("serving_cluster", {"purpose": "serving", "ttl_seconds": 0}),
    ],
)
def test_bad_specs_are_rejected(name: str, value: dict[str, Any]) -> None:
    with pytest.raises(ParamValidationError):
        _validated(**{name: value})


def _render(template: str, context: dict[str, Any]) -> Any:
    env = dag.get_template_env(force_sandboxed=False)
    return env.from_string(template).render(**context)


def test_training_request_is_built_from_the_spec_param(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "workflow_run_id", lambda dag_id, run_id: 7)
    train = _task("train")
    assert isinstance(train, TrainModelOperator)
    spec = {**DEFAULT_TRAINING, "name": "quoted.name"}
    assert _render(train.spec, {"params": {"training": spec}}) == spec
    train.spec = spec
    words = shlex.split(train.build_entrypoint(context_for(FakeTI("train")), cluster_id=None))
    request = TrainRequest.from_argv(words[3:])
    assert request.spec == load_spec(spec)
    assert request.workflow_run_id == 7


def test_jobs_get_the_rayline_settings_outside_the_templates() -> None:
    for task_id in ("train", "deploy"):
        task = _task(task_id)
        assert "job_env" not in task.template_fields
        env = task.build_job_env(context_for(FakeTI(task_id)))  # type: ignore[attr-defined]
        assert "RAYLINE_DATABASE_URL" in env
        assert task.no_retry_exit_codes == {2}  # type: ignore[attr-defined]
    assert _task("deploy").no_retry_errors == {"ImageBuildError"}  # type: ignore[attr-defined]


def test_deploy_fields_render_typed_from_the_serving_params() -> None:
    deploy = _task("deploy")
    serving = {**DEFAULT_SERVING, "spec": {"num_replicas": 2}, "mode": "ray", "port": 8123}
    context = {"params": {"serving": serving}, "ti": None}

    assert _render(deploy.port, context) == 8123  # type: ignore[attr-defined]
    assert _render(deploy.serving_spec, context) == {"num_replicas": 2}  # type: ignore[attr-defined]
    assert _render(deploy.mode, context) == "ray"  # type: ignore[attr-defined]
    assert _render(deploy.labels, context) == {}  # type: ignore[attr-defined]
    assert _render(deploy.port, {"params": {"serving": DEFAULT_SERVING}}) is None  # type: ignore[attr-defined]


class _TI:
    def __init__(self, job_result: Any) -> None:
        self.job_result = job_result

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        assert (task_ids, key) == ("train", "job_result")
        return self.job_result


def test_deploy_takes_the_version_the_training_job_reported() -> None:
    rendered = _render(_task("deploy").version, {"ti": _TI({"version": 4, "name": "iris"})})  # type: ignore[attr-defined]
    assert rendered == 4 and isinstance(rendered, int)


def _training_cluster_request(training: dict[str, Any]) -> ClusterCreate:
    create = _task("create_training_cluster")
    assert isinstance(create, CreateRayClusterOperator)
    context = {
        "params": {"training": training, "training_cluster": _validated()["training_cluster"]}
    }
    rendered = copy.copy(create)
    rendered.spec = _render(create.spec, context)  # type: ignore[arg-type]
    rendered.training_spec = _render(create.training_spec, context)  # type: ignore[arg-type]
    key = ids.TaskKey.from_context(context_for(FakeTI("create_training_cluster")))
    return rendered.build_request(key)


def test_the_training_cluster_fits_the_workers_of_the_training_param() -> None:
    training = {**DEFAULT_TRAINING, "framework": "xgboost", "workers": 4}
    assert _validated(training=training)["training"]["workers"] == 4
    request = _training_cluster_request(training)
    worker = {"CPU": request.worker.cpus, "GPU": request.worker.gpus}
    nodes = [{"CPU": request.head.cpus, "GPU": 0}] + [worker] * request.worker_count
    assert request.worker_count == 4
    check_capacity(load_spec(training), nodes)  # Ray Train places all 4 workers


def test_the_default_training_cluster_is_the_warm_pools_shape() -> None:
    request = _training_cluster_request(DEFAULT_TRAINING)
    assert match(request, parse_pool_setting("training:1")) is not None


@pytest.mark.parametrize("task_id", ["request_serving_cluster", "create_serving_cluster"])
def test_serving_requests_name_the_model_and_still_fit_the_serving_pool(task_id: str) -> None:
    create = _task(task_id)
    assert isinstance(create, CreateRayClusterOperator)
    training = {**DEFAULT_TRAINING, "name": "iris-prod"}
    context = {"params": {"training": training, "serving_cluster": _validated()["serving_cluster"]}}
    rendered = copy.copy(create)
    rendered.spec = _render(create.spec, context)  # type: ignore[arg-type]
    rendered.model = _render(create.model, context)  # type: ignore[arg-type]
    request = rendered.build_request(ids.TaskKey.from_context(context_for(FakeTI(task_id))))
    assert request.labels[MODEL_LABEL] == "iris-prod"  # the manager answers with its cluster
    assert match(request, parse_pool_setting("serving:1")) is not None  # a first one: pooled


def test_a_wrong_target_fails_the_check_before_any_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    training = {**DEFAULT_TRAINING, "target": "species"}
    monkeypatch.setattr(module, "get_current_context", lambda: {"params": {"training": training}})
    check = _task("check_training_input").python_callable  # type: ignore[attr-defined]
    with pytest.raises(AirflowFailException, match="MissingTargetError: target column 'species'"):
        check()
    monkeypatch.setattr(
        module, "get_current_context", lambda: {"params": {"training": DEFAULT_TRAINING}}
    )
    check()


def test_job_tasks_follow_short_jobs_on_the_worker_before_deferring() -> None:
    for task_id in ("train", "deploy"):
        task = _task(task_id)
        assert task.deferrable and task.defer_after >= 30, task_id
