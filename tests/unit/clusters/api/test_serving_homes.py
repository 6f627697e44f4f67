"""A model's serving cluster through the API: adopted by model, reaped when it serves nothing.

The fake backend stands in for Ray; the same paths run on real Ray in
tests/integration/clusters/test_serving_homes.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from rayline.clusters.runtime import ManagerRuntime
from rayline.clusters.serving_homes import MODEL_LABEL
from rayline.metadata import DeploymentMode, DeploymentStatus
from rayline.metadata.models import Cluster
from rayline.serving import records
from tests.unit.clusters.api.fakes import FakeBackend, runtime, spec, wait_state
from tests.unit.clusters.api.test_lifecycle import register_model_version, states_reasons


def serving(name: str, model: str | None = None, **overrides: Any) -> dict[str, Any]:
    labels = {MODEL_LABEL: model} if model else {}
    return spec(name=name, purpose="serving", labels=labels, ttl_seconds=7200, **overrides)


def create(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/clusters", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    return created


def idle_for(rt: ManagerRuntime, cluster_id: str, seconds: float) -> None:
    """Make the cluster look idle since ``seconds`` ago."""
    with rt.service.session() as session:
        cluster = session.get(Cluster, cluster_id)
        assert cluster is not None and cluster.ready_at is not None
        cluster.ready_at -= timedelta(seconds=seconds)
        cluster.created_at -= timedelta(seconds=seconds)
        cluster.last_active_at = None


def test_a_serving_request_for_a_model_gets_that_models_cluster(client: TestClient) -> None:
    first = create(client, serving("iris-1", "iris"))
    wait_state(client, first["id"])
    again = create(client, serving("iris-2", "iris", request_id="second-run"))
    assert again["id"] == first["id"] and again["state"] == "READY"
    assert again["labels"][MODEL_LABEL] == "iris"

    # Another model, no model, or not serving: a cluster of its own (quota: 3 live).
    other = create(client, serving("wine-1", "wine"))
    unlabelled = create(client, serving("anon"))
    assert len({first["id"], other["id"], unlabelled["id"]}) == 3
    client.delete(f"/v1/clusters/{other['id']}")
    wait_state(client, other["id"], "TERMINATED")
    training = create(client, spec(name="t", labels={MODEL_LABEL: "iris"}))
    assert training["id"] != first["id"]


def test_an_ended_home_is_not_adopted(client: TestClient) -> None:
    first = create(client, serving("iris-1", "iris"))
    wait_state(client, first["id"])
    client.delete(f"/v1/clusters/{first['id']}")
    wait_state(client, first["id"], "TERMINATED")
    assert create(client, serving("iris-2", "iris"))["id"] != first["id"]


def test_an_idle_serving_cluster_is_reaped_with_its_reason(
    client: TestClient, fake_backend: type[FakeBackend]
) -> None:
    rt = runtime(client)
    limit = rt.settings.serving_idle_seconds
    cluster_id = create(client, serving("iris-1", "iris"))["id"]
    wait_state(client, cluster_id)
    rt.lifecycle.run_once()
    assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "READY"  # just started

    idle_for(rt, cluster_id, limit + 1)
    fake_backend.busy.add(cluster_id)  # a job runs there: kept, its idle time starts again
    rt.lifecycle.run_once()
    assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "READY"

    fake_backend.busy.clear()
    idle_for(rt, cluster_id, limit + 1)
    rt.lifecycle.run_once()
    assert wait_state(client, cluster_id, "TERMINATED")["state"] == "TERMINATED"
    assert "backs no live deployment" in states_reasons(client, cluster_id)
    assert cluster_id not in fake_backend.live


def test_a_serving_cluster_with_an_active_deployment_is_kept_then_reaped_once_stopped(
    client: TestClient,
) -> None:
    rt = runtime(client)
    limit = rt.settings.serving_idle_seconds
    cluster_id = create(client, serving("iris-1", "iris"))["id"]
    wait_state(client, cluster_id)
    register_model_version(rt, "iris", 1)
    row = records.create_deployment(
        rt.engine, model_name="iris", model_version=1, mode=DeploymentMode.RAY,
        cluster_id=cluster_id,
    )  # fmt: skip
    records.update_deployment(rt.engine, row.id, status=DeploymentStatus.LIVE)
    idle_for(rt, cluster_id, limit + 1)
    rt.lifecycle.run_once()
    assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "READY"

    # Stopped just now: the idle time counts from the stop, not from the cluster's start.
    records.update_deployment(rt.engine, row.id, status=DeploymentStatus.STOPPED)
    rt.lifecycle.run_once()
    assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "READY"
