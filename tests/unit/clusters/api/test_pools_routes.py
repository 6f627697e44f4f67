"""Warm pools through the API: the `pool` field, the POOLED state, adoption's answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rayline.config import Settings
from tests.unit.clusters.api.fakes import TOKEN, runtime, spec


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'meta.db'}",
        api_token=TOKEN,
        cluster_backend="fake",
        max_live_clusters=3,
        reaper_interval_seconds=3600,  # tests drive the lifecycle and the pool by hand
        pool="training:1",
        pool_refill_delay_seconds=0,
    )


def test_a_pooled_cluster_shows_as_pooled_and_a_matching_post_answers_ready(
    client: TestClient,
) -> None:
    spare = runtime(client).pools.fill_once()
    listed = client.get("/v1/clusters", params={"state": "POOLED"}).json()["data"]
    assert [(c["id"], c["pool"], c["adopted_at"]) for c in listed] == [(spare, "training", None)]

    response = client.post("/v1/clusters", json=spec(head={"cpus": 2}))
    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["state"], body["pool"]) == (spare, "READY", "training")
    assert body["adopted_at"] is not None and body["name"] == "train-1"
    events = client.get(f"/v1/clusters/{spare}/events").json()
    assert [e["to_state"] for e in events] == ["PENDING", "PROVISIONING", "POOLED", "READY"]
    assert "adopted from warm pool 'training'" in events[-1]["reason"]


def test_a_request_of_another_shape_answers_pending_with_no_pool(client: TestClient) -> None:
    runtime(client).pools.fill_once()
    body = client.post("/v1/clusters", json=spec(head={"cpus": 1})).json()
    assert (body["state"], body["pool"]) == ("PENDING", None)
    events = client.get(f"/v1/clusters/{body['id']}/events").json()
    assert "cold start" in events[0]["reason"]


def test_drain_ends_the_spares_and_stops_the_refill(client: TestClient) -> None:
    spare = runtime(client).pools.fill_once()
    response = client.post("/v1/pools/drain")
    assert response.status_code == 200 and response.json() == {"drained": [spare]}
    assert client.get(f"/v1/clusters/{spare}").json()["state"] == "TERMINATED"
    assert runtime(client).pools.fill_once() is None  # no refill after a drain
