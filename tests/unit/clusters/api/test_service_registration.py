"""A registered endpoint must belong to its deployment and its cluster."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from rayline.metadata.db import session_scope
from rayline.metadata.enums import DeploymentMode
from rayline.metadata.models import Deployment
from tests.unit.clusters.api.fakes import runtime
from tests.unit.clusters.api.test_lifecycle import ready_cluster, register_model_version


def _deployment(client: TestClient, cluster_id: str, version: int = 1) -> str:
    with session_scope(runtime(client).engine) as session:
        row = Deployment(
            model_name="iris", model_version=version, mode=DeploymentMode.RAY, cluster_id=cluster_id
        )
        session.add(row)
        session.flush()
        return row.id


def _head_host(client: TestClient, cluster_id: str) -> str:
    head: str = client.get(f"/v1/clusters/{cluster_id}").json()["head_address"]
    return head.rsplit(":", 1)[0]


def _body(**fields: Any) -> dict[str, Any]:
    return {"model_name": "iris", "model_version": 1, **fields}


def test_an_endpoint_on_its_deployments_cluster_is_registered(client: TestClient) -> None:
    cluster_id = ready_cluster(client, purpose="serving")
    register_model_version(runtime(client), "iris", 1)
    deployment_id = _deployment(client, cluster_id)
    url = f"http://{_head_host(client, cluster_id)}:9100"

    response = client.post("/v1/services", json=_body(url=url, deployment_id=deployment_id))

    assert response.status_code == 201, response.text
    assert response.json()["cluster_id"] == cluster_id  # taken from the deployment


def test_a_url_off_the_clusters_host_is_refused_with_the_field_named(client: TestClient) -> None:
    cluster_id = ready_cluster(client, purpose="serving")
    register_model_version(runtime(client), "iris", 1)

    response = client.post(
        "/v1/services", json=_body(url="http://203.0.113.9:9100", cluster_id=cluster_id)
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("url:")


def test_a_deployment_of_another_cluster_or_version_is_refused(client: TestClient) -> None:
    serving = ready_cluster(client, purpose="serving", name="serving")
    other = ready_cluster(client, purpose="serving", name="other")
    register_model_version(runtime(client), "iris", 2)
    deployment_id = _deployment(client, serving, version=2)
    url = f"http://{_head_host(client, other)}:9100"

    wrong_cluster = client.post(
        "/v1/services",
        json=_body(model_version=2, url=url, cluster_id=other, deployment_id=deployment_id),
    )
    wrong_version = client.post("/v1/services", json=_body(url=url, deployment_id=deployment_id))

    assert wrong_cluster.status_code == 422
    assert wrong_cluster.json()["detail"].startswith("cluster_id:")
    assert wrong_version.status_code == 422
    assert wrong_version.json()["detail"].startswith("deployment_id:")


def test_an_endpoint_on_a_deleted_cluster_is_refused(client: TestClient) -> None:
    cluster_id = ready_cluster(client, purpose="serving")
    register_model_version(runtime(client), "iris", 1)
    url = f"http://{_head_host(client, cluster_id)}:9100"
    client.delete(f"/v1/clusters/{cluster_id}")
    from tests.unit.clusters.api.fakes import wait_state

    wait_state(client, cluster_id, "TERMINATED")

    response = client.post("/v1/services", json=_body(url=url, cluster_id=cluster_id))

    assert response.status_code == 422
    assert "TERMINATED" in response.json()["detail"]
