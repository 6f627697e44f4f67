"""Bounded requests of the Cluster Manager: body limit before auth, pages, health details."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.clusters.api.fakes import runtime, spec, wait_state
from tests.unit.clusters.api.test_lifecycle import register_model_version

LIMIT = 256 * 1024
ANONYMOUS = {"Authorization": ""}


def test_a_declared_body_over_the_limit_is_413_before_auth(client: TestClient) -> None:
    body = b'{"name": "' + b"x" * LIMIT + b'"}'

    response = client.post(
        "/v1/clusters", content=body, headers={**ANONYMOUS, "content-type": "application/json"}
    )

    assert response.status_code == 413
    assert "RAYLINE_API_MAX_BODY_BYTES" in response.json()["detail"]


def test_a_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 1024 + 2):
            yield b" " * 1024

    response = client.post("/v1/clusters", content=chunks(), headers=ANONYMOUS)

    assert response.status_code == 413


def test_a_chunked_body_under_the_limit_reaches_the_route(client: TestClient) -> None:
    import json

    body = json.dumps(spec()).encode()

    response = client.post(
        "/v1/clusters",
        content=iter([body[:10], body[10:]]),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 202, response.text


def test_a_bad_content_length_is_400(client: TestClient) -> None:
    response = client.post("/v1/clusters", headers={"content-length": "12x"}, content=b"")

    assert response.status_code in (400, 413)


def test_services_come_in_pages(client: TestClient) -> None:
    rt = runtime(client)
    register_model_version(rt, "iris", 1)
    for port in range(9100, 9105):
        body = {"model_name": "iris", "model_version": 1, "url": f"http://127.0.0.1:{port}"}
        assert client.post("/v1/services", json=body).status_code == 201

    first = client.get("/v1/services?limit=2").json()
    rest = client.get("/v1/services?limit=2&offset=2").json()

    assert first["count"] == 2 and rest["count"] == 2
    assert {s["url"] for s in first["data"]}.isdisjoint(s["url"] for s in rest["data"])
    assert client.get("/v1/services?limit=100000").status_code == 422


def test_events_come_in_pages(client: TestClient) -> None:
    cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
    wait_state(client, cluster_id)

    page: list[dict[str, Any]] = client.get(f"/v1/clusters/{cluster_id}/events?limit=1").json()
    second = client.get(f"/v1/clusters/{cluster_id}/events?limit=1&offset=1").json()

    assert [e["to_state"] for e in page] == ["PENDING"]
    assert [e["to_state"] for e in second] == ["PROVISIONING"]


def test_a_service_cannot_declare_itself_healthy(client: TestClient) -> None:
    register_model_version(runtime(client), "iris", 1)
    body = {"model_name": "iris", "model_version": 1, "url": "http://127.0.0.1:9100"}

    refused = client.post("/v1/services", json={**body, "health": "healthy"})
    registered = client.post("/v1/services", json=body)

    assert refused.status_code == 422 and "health" in refused.text
    assert registered.json()["health"] == "unknown"


def test_health_without_the_token_says_only_ok_or_degraded(client: TestClient) -> None:
    anonymous = client.get("/healthz", headers=ANONYMOUS).json()
    detailed = client.get("/healthz").json()

    assert anonymous == {"status": "ok"}
    assert detailed["status"] == "ok" and {"version", "backend", "coordination"} <= set(detailed)


def test_the_server_limits_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rayline.cli import cluster_manager
    from rayline.config import get_settings

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cluster_manager.uvicorn, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setattr(cluster_manager, "create_app", lambda settings: object())
    monkeypatch.setenv("RAYLINE_API_LIMIT_CONCURRENCY", "7")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cluster_manager.app, [])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert seen["limit_concurrency"] == 7


def test_clusters_come_in_pages(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        assert client.post("/v1/clusters", json=spec(name=name)).status_code == 202

    first = client.get("/v1/clusters?limit=2").json()
    rest = client.get("/v1/clusters?limit=2&offset=2").json()

    assert [c["name"] for c in first["data"]] == ["c", "b"]
    assert [c["name"] for c in rest["data"]] == ["a"]
    assert client.get("/v1/clusters?limit=100000").status_code == 422
    assert client.get("/v1/clusters?offset=-1").status_code == 422


def test_a_node_needs_at_least_a_fraction_of_a_cpu(client: TestClient) -> None:
    response = client.post("/v1/clusters", json=spec(worker={"cpus": 0}, worker_count=64))

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "worker", "cpus"]]
    assert client.post("/v1/clusters", json=spec(worker={"cpus": 0.1})).status_code == 202


def test_a_cluster_beyond_what_the_live_ones_leave_is_409(client: TestClient) -> None:
    # The fake host has 2 cores; with the default overcommit of 4 that is 8 CPUs.
    assert client.post("/v1/clusters", json=spec(name="a", head={"cpus": 5})).status_code == 202

    refused = client.post("/v1/clusters", json=spec(name="b", head={"cpus": 4}))
    fits = client.post("/v1/clusters", json=spec(name="c", head={"cpus": 3}))

    assert refused.status_code == 409
    assert "already hold 5 of the 8" in refused.json()["detail"]
    assert fits.status_code == 202


def test_deleted_clusters_give_their_resources_back(client: TestClient) -> None:
    first = client.post("/v1/clusters", json=spec(name="a", head={"cpus": 8})).json()
    assert client.post("/v1/clusters", json=spec(name="b")).status_code == 409

    client.delete(f"/v1/clusters/{first['id']}")
    wait_state(client, first["id"], "TERMINATED")

    assert client.post("/v1/clusters", json=spec(name="b")).status_code == 202
