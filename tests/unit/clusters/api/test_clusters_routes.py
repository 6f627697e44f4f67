"""The /v1/clusters routes: status codes, error details, state machine, idempotency."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rayline.metadata.enums import ClusterState
from tests.unit.clusters.api.fakes import FakeBackend, runtime, spec, wait_state


def test_create_answers_202_and_reaches_ready(client: TestClient) -> None:
    response = client.post("/v1/clusters", json=spec(labels={"team": "ml"}))
    assert response.status_code == 202
    created = response.json()
    assert created["state"] in ("PENDING", "PROVISIONING", "READY")
    ready = wait_state(client, created["id"])
    assert ready["state"] == "READY"
    assert ready["head_address"] == "127.0.0.1:1"
    assert ready["job_api_url"] == "http://127.0.0.1:2"
    assert ready["nodes"][0]["alive"] is True
    events = client.get(f"/v1/clusters/{created['id']}/events").json()
    assert [e["to_state"] for e in events] == ["PENDING", "PROVISIONING", "READY"]
    assert all(e["reason"] for e in events)


def test_same_request_id_returns_same_cluster(client: TestClient) -> None:
    first = client.post("/v1/clusters", json=spec(request_id="run-1:train:1")).json()
    second = client.post("/v1/clusters", json=spec(request_id="run-1:train:1")).json()
    assert first["id"] == second["id"]
    assert client.get("/v1/clusters").json()["count"] == 1


def test_delete_is_idempotent_and_terminates(
    client: TestClient, fake_backend: type[FakeBackend]
) -> None:
    cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
    wait_state(client, cluster_id)
    assert client.delete(f"/v1/clusters/{cluster_id}").status_code == 202
    assert wait_state(client, cluster_id, "TERMINATED")["state"] == "TERMINATED"
    again = client.delete(f"/v1/clusters/{cluster_id}")
    assert again.status_code == 202 and again.json()["state"] == "TERMINATED"
    assert cluster_id not in fake_backend.live


def test_list_filters_by_purpose_state_and_label(client: TestClient) -> None:
    a = client.post("/v1/clusters", json=spec(name="a", labels={"team": "x"})).json()["id"]
    client.post("/v1/clusters", json=spec(name="b", purpose="serving"))
    wait_state(client, a)
    assert [c["id"] for c in client.get("/v1/clusters?purpose=training").json()["data"]] == [a]
    assert client.get("/v1/clusters?label=team=x").json()["data"][0]["id"] == a
    assert client.get("/v1/clusters?label=team=y").json()["count"] == 0
    assert client.get("/v1/clusters?label=broken").status_code == 422


def test_quota_answers_429_with_clear_message(client: TestClient) -> None:
    for i in range(3):
        assert client.post("/v1/clusters", json=spec(name=f"c{i}")).status_code == 202
    response = client.post("/v1/clusters", json=spec(name="c4"))
    assert response.status_code == 429
    assert "quota" in response.json()["detail"]
    assert response.headers["Retry-After"]


def test_unsatisfiable_resources_fail_with_reason(client: TestClient) -> None:
    cluster_id = client.post("/v1/clusters", json=spec(head={"gpus": 4})).json()["id"]
    failed = wait_state(client, cluster_id)
    assert failed["state"] == "FAILED"
    assert "GPUs" in failed["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (spec(head={"cpus": -1}), "cpus"),
        (spec(purpose="gaming"), "purpose"),
        (spec(ttl_seconds=0), "ttl_seconds"),
        (spec(name="x" * 64), "name"),
        (spec(name="../etc"), "name"),
        (spec(colour="red"), "colour"),
        (spec(worker_count=-2), "worker_count"),
        (spec(labels={"bad key!": "v"}), "labels"),
    ],
)
def test_invalid_spec_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/clusters", json=body)
    assert response.status_code == 422
    locations = [".".join(str(p) for p in err["loc"]) for err in response.json()["detail"]]
    assert any(field in loc for loc in locations), locations


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/clusters", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_unknown_id_is_404(client: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/clusters/rc-nope"),
        ("GET", "/v1/clusters/rc-nope/events"),
        ("DELETE", "/v1/clusters/rc-nope"),
        ("POST", "/v1/clusters/rc-nope/wait"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert "rc-nope" in response.json()["detail"]


def test_every_route_but_health_needs_the_token(client: TestClient) -> None:
    anonymous = {"Authorization": ""}
    assert client.get("/healthz", headers=anonymous).status_code == 200
    for method, path in [
        ("GET", "/v1/clusters"),
        ("POST", "/v1/clusters"),
        ("GET", "/v1/services"),
        ("GET", "/metrics"),
    ]:
        assert client.request(method, path, headers=anonymous).status_code == 401
        wrong = {"Authorization": "Bearer " + "x" * 40}
        assert client.request(method, path, headers=wrong).status_code == 401


def test_provisioning_time_is_counted_before_ready_is_visible(client: TestClient) -> None:
    manager = runtime(client)
    counted_at_ready: list[float | None] = []

    def on_change() -> None:
        ready = manager.service.list_clusters(state=ClusterState.READY)
        if ready and not counted_at_ready:
            counted_at_ready.append(
                manager.metrics.registry.get_sample_value(
                    "rayline_cluster_provisioning_seconds_count",
                    {"purpose": "training", "backend": "fake"},
                )
            )

    manager.service.change_listeners.append(on_change)
    wait_state(client, client.post("/v1/clusters", json=spec()).json()["id"])
    deadline = time.monotonic() + 30  # the listener runs in the provisioner thread
    while not counted_at_ready and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counted_at_ready == [1.0]


def test_metrics_expose_clusters_latency_and_provisioning(client: TestClient) -> None:
    cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
    wait_state(client, cluster_id)
    runtime(client).lifecycle.run_once()
    text = client.get("/metrics").text
    assert 'rayline_clusters{purpose="training",state="READY"} 1.0' in text
    assert "rayline_cluster_provisioning_seconds_count" in text
    assert 'rayline_api_request_seconds_count{method="POST",route="/v1/clusters"' in text


def test_a_request_cannot_set_the_labels_the_manager_sets(client: TestClient) -> None:
    from tests.unit.clusters.api.fakes import spec

    response = client.post("/v1/clusters", json=spec(labels={"rayline.pool": "training"}))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "labels", "rayline.pool"]
    assert client.post("/v1/clusters", json=spec(labels={"team": "a"})).status_code == 202
