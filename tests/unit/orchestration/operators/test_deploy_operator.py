"""DeployModelOperator: the deploy entrypoint, and the endpoint read back from discovery."""

from __future__ import annotations

import shlex
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from rayline.clusters.schemas import ServicePublic
from rayline.jobs.requests import DeployRequest
from rayline.jobs.results import DeployResult
from rayline.orchestration import recording
from rayline.orchestration.exceptions import InvalidJobRequestError, RayJobFailedError
from rayline.orchestration.operators.deploy import DeployModelOperator
from rayline.serving.spec import ServingSpec
from tests.unit.orchestration.fakes import NOW, FakeClusterManagerHook, FakeTI, context_for


def _operator(**kwargs: object) -> DeployModelOperator:
    kwargs.setdefault("model", "iris")
    kwargs.setdefault("port", 8123)
    return DeployModelOperator(task_id="deploy", job_api_url="http://127.0.0.1:8265", **kwargs)  # type: ignore[arg-type]


def _endpoint(
    service_id: int, version: int, url: str, cluster_id: str | None, age: int
) -> ServicePublic:
    return ServicePublic(
        id=service_id,
        model_name="iris",
        model_version=version,
        url=url,
        cluster_id=cluster_id,
        deployment_id=f"dep-{service_id}",
        health="healthy",
        registered_at=NOW + timedelta(seconds=age),
    )


@pytest.fixture(autouse=True)
def _lineage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "workflow_run_id", lambda dag_id, run_id: 7)


def test_template_fields_add_the_deploy_fields() -> None:
    fields = DeployModelOperator.template_fields
    assert fields[:5] == ("entrypoint", "job_api_url", "cluster", "runtime_env", "metadata")
    assert fields[5:] == ("model", "version", "port", "serving_spec", "mode", "labels")
    assert DeployModelOperator.result_type is DeployResult


def test_entrypoint_is_the_typed_request() -> None:
    op = _operator(
        version=3,
        serving_spec={"num_replicas": 2, "max_batch_size": 8},
        mode="ray",
        labels={"team": "a b"},
    )
    command = op.build_entrypoint(context_for(FakeTI("deploy")), cluster_id="rc-9")
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "rayline.jobs.deploy"]
    assert DeployRequest.from_argv(words[3:]) == DeployRequest(
        model="iris",
        version=3,
        port=8123,
        cluster_id="rc-9",
        mode="ray",
        spec=ServingSpec(num_replicas=2, max_batch_size=8),
        labels={"team": "a b"},
        workflow_run_id=7,
    )


def test_without_version_or_port_the_job_picks_them() -> None:
    op = _operator(port=None)
    request = op.build_request(context_for(FakeTI("deploy")), cluster_id=None)
    assert (request.version, request.port) == (None, None)


@pytest.mark.parametrize(
    ("field", "value"), [("version", "None"), ("version", 0), ("port", "None"), ("mode", "k8s")]
)
def test_an_invalid_field_fails_without_retry(field: str, value: object) -> None:
    op = _operator(**{field: value})
    with pytest.raises(InvalidJobRequestError, match=field) as raised:
        op.build_entrypoint(context_for(FakeTI("deploy")), cluster_id=None)
    assert isinstance(raised.value, AirflowFailException)


def _result(deployment_id: str, version: int = 3) -> dict[str, object]:
    return DeployResult(
        deployment_id=deployment_id, model="iris", version=version, status="live", mode="ray"
    ).model_dump()


def test_endpoint_of_this_version_on_this_cluster_is_pushed() -> None:
    manager = FakeClusterManagerHook()
    manager.endpoints = [
        _endpoint(1, 3, "http://127.0.0.1:9000", "rc-old", age=0),
        _endpoint(2, 3, "http://127.0.0.1:8123", "rc-9", age=1),
        _endpoint(3, 2, "http://127.0.0.1:8124", "rc-9", age=2),
    ]
    op = _operator(version=3)
    op.__dict__["cluster_hook"] = manager
    ti = FakeTI("deploy")

    outcome = op.job_succeeded(
        context_for(ti), {"cluster_id": "rc-9", "status": "SUCCEEDED", "result": _result("dep-2")}
    )

    assert outcome["endpoint_url"] == "http://127.0.0.1:8123"
    assert (outcome["model"], outcome["version"], outcome["deployment_id"]) == ("iris", 3, "dep-2")
    assert ti.xcom[("deploy", "endpoint_url")] == "http://127.0.0.1:8123"


def test_the_deployment_the_job_reported_wins() -> None:
    manager = FakeClusterManagerHook()
    manager.endpoints = [
        _endpoint(1, 3, "http://127.0.0.1:9000", "rc-9", age=5),
        _endpoint(2, 3, "http://127.0.0.1:8123", "rc-9", age=0),
    ]
    op = _operator(version=3)
    op.__dict__["cluster_hook"] = manager

    outcome = op.job_succeeded(
        context_for(FakeTI("deploy")),
        {"cluster_id": "rc-9", "result": _result("dep-2")},
    )

    assert outcome["endpoint_url"] == "http://127.0.0.1:8123"


def test_no_registered_endpoint_fails_the_task() -> None:
    manager = FakeClusterManagerHook()
    op = _operator()
    op.__dict__["cluster_hook"] = manager
    outcome = {"submission_id": "j", "cluster_id": None, "result": _result("dep-9")}
    with pytest.raises(AirflowException, match="no live endpoint serves 'iris'"):
        op.job_succeeded(context_for(FakeTI("deploy")), outcome)

    manager.endpoints = [_endpoint(1, 2, "http://127.0.0.1:9000", None, age=0)]
    with pytest.raises(AirflowException, match="registered no endpoint of deployment dep-9"):
        op.job_succeeded(context_for(FakeTI("deploy")), outcome)
    with pytest.raises(AirflowException, match="printed no RAYLINE_RESULT"):
        op.job_succeeded(context_for(FakeTI("deploy")), {"submission_id": "j", "result": None})


def _failed_deploy(error: str) -> Exception:
    """Finish a deploy job that failed (exit 1) after reporting ``error``."""
    from rayline.jobs.output import error_line
    from tests.unit.orchestration.fakes import FakeRayJobHook

    api = FakeRayJobHook()
    api.add("sub-1", "FAILED", logs=f"building\n(pid=9) {error_line(error, 'it broke')}\n")
    op = _operator()
    op.get_hook = lambda url, cluster_id=None: api  # type: ignore[assignment,method-assign,return-value]
    event = {
        "status": "error",
        "message": "Job entrypoint command failed with exit code 1",
        "submission_id": "sub-1",
        "job_api_url": api.address,
        "job_status": "FAILED",
        "exit_code": 1,
    }
    with pytest.raises(RayJobFailedError) as failed:
        op.execute_complete(context_for(FakeTI("deploy")), event)
    return failed.value


def test_an_image_build_failure_fails_the_task_without_retries() -> None:
    failed = _failed_deploy("ImageBuildError")
    assert isinstance(failed, AirflowFailException)  # building again fails the same way
    assert "the job said: ImageBuildError: it broke" in str(failed)
    assert "ImageBuildError fails the same way every time, so no retry" in str(failed)


def test_a_deployment_that_failed_otherwise_may_be_retried() -> None:
    failed = _failed_deploy("DeploymentFailedError")
    assert not isinstance(failed, AirflowFailException)
