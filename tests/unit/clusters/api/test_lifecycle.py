"""The lifecycle manager on the fake backend: death, TTL, idle, serving guard, restart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from rayline.clusters.runtime import ManagerRuntime
from rayline.metadata.models import Cluster
from tests.unit.clusters.api.fakes import FakeBackend, runtime, spec, wait_state


def age(rt: ManagerRuntime, cluster_id: str, seconds: float, column: str = "created_at") -> None:
    with rt.service.session() as session:
        cluster = session.get(Cluster, cluster_id)
        assert cluster is not None
        setattr(cluster, column, getattr(cluster, column) - timedelta(seconds=seconds))


def states(client: TestClient, cluster_id: str) -> list[str]:
    return [e["to_state"] for e in client.get(f"/v1/clusters/{cluster_id}/events").json()]


def ready_cluster(client: TestClient, **overrides: Any) -> str:
    cluster_id: str = client.post("/v1/clusters", json=spec(**overrides)).json()["id"]
    wait_state(client, cluster_id)
    return cluster_id


def test_dead_cluster_goes_unhealthy_then_failed(
    client: TestClient, fake_backend: type[FakeBackend]
) -> None:
    cluster_id = ready_cluster(client)
    fake_backend.live.pop(cluster_id)  # the head died behind our back
    rt = runtime(client)
    rt.lifecycle.run_once()
    assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "UNHEALTHY"
    rt.lifecycle.run_once()
    failed = wait_state(client, cluster_id, "FAILED")
    assert failed["state"] == "FAILED" and "died" in failed["reason"]
    assert states(client, cluster_id)[-2:] == ["UNHEALTHY", "FAILED"]


def test_ttl_reaps(client: TestClient, fake_backend: type[FakeBackend]) -> None:
    cluster_id = ready_cluster(client, ttl_seconds=60)
    age(runtime(client), cluster_id, 61)
    runtime(client).lifecycle.run_once()
    done = wait_state(client, cluster_id, "TERMINATED")
    assert done["state"] == "TERMINATED"
    assert "TTL" in states_reasons(client, cluster_id)
    assert cluster_id not in fake_backend.live


def states_reasons(client: TestClient, cluster_id: str) -> str:
    return " ".join(e["reason"] for e in client.get(f"/v1/clusters/{cluster_id}/events").json())


def test_idle_reaps_only_when_nothing_runs(
    client: TestClient, fake_backend: type[FakeBackend]
) -> None:
    cluster_id = ready_cluster(client, idle_timeout_seconds=30)
    rt = runtime(client)
    fake_backend.busy.add(cluster_id)
    age(rt, cluster_id, 31, "last_active_at")
    rt.lifecycle.run_once()
    assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "READY"
    fake_backend.busy.clear()
    age(rt, cluster_id, 31, "last_active_at")
    rt.lifecycle.run_once()
    assert wait_state(client, cluster_id, "TERMINATED")["state"] == "TERMINATED"
    assert "idle" in states_reasons(client, cluster_id)


def test_serving_cluster_backing_a_service_is_never_reaped(client: TestClient) -> None:
    cluster_id = ready_cluster(client, purpose="serving", ttl_seconds=60)
    rt = runtime(client)
    register_model_version(rt, "iris", 1)
    response = client.post(
        "/v1/services",
        json={
            "model_name": "iris",
            "model_version": 1,
            "url": "http://127.0.0.1:9100",
            "cluster_id": cluster_id,
        },
    )
    assert response.status_code == 201, response.text
    age(rt, cluster_id, 3600)
    rt.lifecycle.run_once()
    assert client.get(f"/v1/clusters/{cluster_id}").json()["state"] == "READY"
    client.delete(f"/v1/services/{response.json()['id']}")
    rt.lifecycle.run_once()
    assert wait_state(client, cluster_id, "TERMINATED")["state"] == "TERMINATED"


def register_model_version(rt: ManagerRuntime, name: str, version: int) -> None:
    from rayline.metadata.registry import ModelRegistry

    for _ in range(version):
        ModelRegistry().register_version(
            rt.engine, name=name, artifact_uri=f"file:///tmp/{name}", sha256="0" * 64
        )


def test_restart_readopts_live_and_fails_lost(
    client: TestClient, fake_backend: type[FakeBackend]
) -> None:
    alive = ready_cluster(client, name="alive")
    lost = ready_cluster(client, name="lost")
    rt = runtime(client)
    fake_backend.live.pop(lost)
    rt.lifecycle.reconcile()  # what a fresh manager does first
    assert client.get(f"/v1/clusters/{alive}").json()["state"] == "READY"
    assert "re-adopted" in client.get(f"/v1/clusters/{alive}").json()["reason"]
    failed = wait_state(client, lost, "FAILED")
    assert failed["state"] == "FAILED" and "lost" in failed["reason"]
