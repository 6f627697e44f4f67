"""GET /v1/clusters/{id}/credentials: the cluster's Ray token, only there and only with auth."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rayline.clusters.backends.base import ClusterHandle
from tests.unit.clusters.api.fakes import FakeBackend, spec, wait_state


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch, fake_backend: type[FakeBackend]) -> None:
    def auth_token(self: FakeBackend, handle: ClusterHandle) -> str:
        return f"secret-token-of-{handle.cluster_id}"

    monkeypatch.setattr(fake_backend, "auth_token", auth_token)


@pytest.mark.usefixtures("tokens")
def test_credentials_hand_out_the_token_and_nothing_else_shows_it(client: TestClient) -> None:
    cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
    wait_state(client, cluster_id)
    response = client.get(f"/v1/clusters/{cluster_id}/credentials")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == {
        "cluster_id": cluster_id,
        "ray_auth_token": f"secret-token-of-{cluster_id}",
        "ray_auth_token_path": None,
    }
    for path in ("/v1/clusters", f"/v1/clusters/{cluster_id}", f"/v1/clusters/{cluster_id}/events"):
        assert "secret-token" not in client.get(path).text


@pytest.mark.usefixtures("tokens")
def test_credentials_need_the_manager_token(client: TestClient) -> None:
    cluster_id = client.post("/v1/clusters", json=spec()).json()["id"]
    wait_state(client, cluster_id)
    url = f"/v1/clusters/{cluster_id}/credentials"
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/clusters/nope/credentials").status_code == 404
