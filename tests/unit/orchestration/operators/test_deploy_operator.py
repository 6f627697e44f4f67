"""DeployModelOperator: the deploy entrypoint, and the endpoint read back from discovery."""

from __future__ import annotations

import shlex
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowException

from rayline.clusters.schemas import ServicePublic
from rayline.orchestration.operators.deploy import DeployModelOperator
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


def test_template_fields_add_the_deploy_arguments() -> None:
    fields = DeployModelOperator.template_fields
    assert fields[:5] == ("entrypoint", "job_api_url", "cluster", "runtime_env", "metadata")
    assert fields[5:] == ("model", "version", "port", "serving_spec", "deploy_args")


@pytest.mark.parametrize(
    ("model", "version", "expected"),
    [
        ("iris", None, "iris"),
        ("iris", "", "iris"),
        ("iris", "None", "iris"),
        ("iris", 3, "iris:3"),
        ("iris", "4", "iris:4"),
        ("iris:2", 5, "iris:2"),
        ("iris@prod", 5, "iris@prod"),
    ],
)
def test_model_reference(model: str, version: object, expected: str) -> None:
    assert _operator(model=model, version=version).model_reference() == expected


def test_entrypoint_is_the_deploy_module_with_quoted_arguments() -> None:
    op = _operator(
        version=3,
        serving_spec={"num_replicas": 2, "max_batch_size": 8},
        deploy_args=["--mode", "ray", "--label", "team=a b"],
    )
    command = op.build_entrypoint(context_for(FakeTI("deploy")), cluster_id="rc-9")
    assert shlex.split(command) == [
        "python", "-m", "rayline.jobs.deploy", "--model", "iris:3", "--port", "8123",
        "--cluster-id", "rc-9", "--spec", '{"max_batch_size": 8, "num_replicas": 2}',
        "--mode", "ray", "--label", "team=a b",
    ]  # fmt: skip


@pytest.mark.parametrize("port", [None, "", "None"])
def test_without_a_port_the_deploy_job_picks_one(port: object) -> None:
    op = _operator(port=port)
    words = shlex.split(op.build_entrypoint(context_for(FakeTI("deploy")), cluster_id=None))
    assert words == ["python", "-m", "rayline.jobs.deploy", "--model", "iris"]


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

    outcome = op.job_succeeded(context_for(ti), {"cluster_id": "rc-9", "status": "SUCCEEDED"})

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
        {"cluster_id": "rc-9", "result": {"deployment_id": "dep-2", "url": "http://x"}},
    )

    assert outcome["endpoint_url"] == "http://127.0.0.1:8123"


def test_no_registered_endpoint_fails_the_task() -> None:
    manager = FakeClusterManagerHook()
    op = _operator()
    op.__dict__["cluster_hook"] = manager
    with pytest.raises(AirflowException, match="no live endpoint serves 'iris'"):
        op.job_succeeded(context_for(FakeTI("deploy")), {"cluster_id": None})

    manager.endpoints = [_endpoint(1, 2, "http://127.0.0.1:9000", None, age=0)]
    with pytest.raises(AirflowException, match="registered no endpoint of iris:3"):
        op3 = _operator(version=3)
        op3.__dict__["cluster_hook"] = manager
        op3.job_succeeded(context_for(FakeTI("deploy")), {"cluster_id": None})
