"""ClusterManagerHook: the Airflow Connection becomes a Cluster Manager client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from airflow.sdk.exceptions import AirflowNotFoundException

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import ClusterFailedError
from rayline.orchestration.hooks import cluster_manager as hook_module
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from tests.unit.orchestration.fakes import NOW

TOKEN = "conn-token-0123456789-0123456789-abcdef"


class RecordingClient:
    """Stands in for ClusterManagerClient to see what the hook built it from."""

    def __init__(self, address: str | None, **kwargs: Any) -> None:
        self.address = address
        self.kwargs = kwargs

    def close(self) -> None:
        pass


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[RecordingClient]:
    clients: list[RecordingClient] = []

    def factory(address: str | None, **kwargs: Any) -> RecordingClient:
        clients.append(RecordingClient(address, **kwargs))
        return clients[-1]

    monkeypatch.setattr(hook_module, "ClusterManagerClient", factory)
    return clients


def test_hook_declares_its_connection_like_airflow_providers() -> None:
    assert ClusterManagerHook.conn_name_attr == "rayline_conn_id"
    assert ClusterManagerHook.default_conn_name == "rayline_default"
    assert ClusterManagerHook.conn_type == "rayline"
    assert ClusterManagerHook.hook_name
    behaviour = ClusterManagerHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "API token"


def test_json_connection_gives_url_and_token(
    monkeypatch: pytest.MonkeyPatch, built: list[RecordingClient]
) -> None:
    conn = {"conn_type": "rayline", "host": "cm.test", "port": 8765, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_RAYLINE_JSON", json.dumps(conn))

    hook = ClusterManagerHook("rayline_json")
    assert hook.get_conn() is hook.get_conn()  # built once

    assert len(built) == 1
    assert built[0].address == "http://cm.test:8765"
    assert built[0].kwargs["token"] == TOKEN


def test_uri_connection_schema_is_the_url_scheme(
    monkeypatch: pytest.MonkeyPatch, built: list[RecordingClient]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RAYLINE_URI", f"rayline://:{TOKEN}@cm.example:9443/https")

    ClusterManagerHook("rayline_uri").get_conn()

    assert built[0].address == "https://cm.example:9443"
    assert built[0].kwargs["token"] == TOKEN


def test_host_may_be_a_full_url(
    monkeypatch: pytest.MonkeyPatch, built: list[RecordingClient]
) -> None:
    conn = {"conn_type": "rayline", "host": "https://cm.example/"}
    monkeypatch.setenv("AIRFLOW_CONN_RAYLINE_FULL", json.dumps(conn))

    ClusterManagerHook("rayline_full").get_conn()

    assert built[0].address == "https://cm.example"
    assert built[0].kwargs["token"] is None  # the client then reads RAYLINE_API_TOKEN


def test_missing_default_connection_falls_back_to_rayline_settings(
    monkeypatch: pytest.MonkeyPatch, built: list[RecordingClient]
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_RAYLINE_DEFAULT", raising=False)

    ClusterManagerHook().get_conn()

    assert built[0].address is None and built[0].kwargs["token"] is None


def test_missing_named_connection_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
    with pytest.raises(AirflowNotFoundException, match="'nope' does not exist"):
        ClusterManagerHook("nope").get_conn()


def test_async_connection_lookup_builds_the_same_client(
    monkeypatch: pytest.MonkeyPatch, built: list[RecordingClient]
) -> None:
    conn = {"conn_type": "rayline", "host": "cm.test", "port": 8765, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_RAYLINE_ASYNC", json.dumps(conn))

    asyncio.run(ClusterManagerHook("rayline_async").aget_conn())

    assert built[0].address == "http://cm.test:8765"
    assert built[0].kwargs["token"] == TOKEN


def _hook_over(handler: Any) -> ClusterManagerHook:
    hook = ClusterManagerHook()
    hook._client = ClusterManagerClient(
        "http://cm.test:8765",
        token=TOKEN,
        transport=httpx.MockTransport(handler),
        max_retries=0,
        sleep=lambda _: None,
    )
    return hook


def test_test_connection_reports_success() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(200, json={"data": [], "count": 0})

    ok, message = _hook_over(handler).test_connection()

    assert ok and "cm.test" in message


def test_test_connection_reports_a_refused_token_without_leaking_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(401, json={"detail": "bad token"})

    ok, message = _hook_over(handler).test_connection()

    assert not ok
    assert "token" in message and TOKEN not in message


def _cluster_json(state: str) -> dict[str, Any]:
    return {
        "id": "rc-1",
        "name": "c",
        "purpose": "training",
        "state": state,
        "backend": "local",
        "worker_count": 0,
        "ttl_seconds": 60,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }


def test_delete_of_an_unknown_cluster_is_a_no_op() -> None:
    hook = _hook_over(lambda request: httpx.Response(404, json={"detail": "no such cluster"}))
    assert hook.delete_cluster("rc-gone") is None


def test_wait_until_terminated_accepts_a_cluster_that_ended_failed() -> None:
    states = iter(["TERMINATING", "FAILED", "FAILED"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_cluster_json(next(states)))

    ended = _hook_over(handler).wait_until_terminated("rc-1", timeout=5)

    assert ended.state == "FAILED"


def test_wait_until_ready_raises_when_the_cluster_failed() -> None:
    hook = _hook_over(lambda request: httpx.Response(200, json=_cluster_json("FAILED")))
    with pytest.raises(ClusterFailedError):
        hook.wait_until_ready("rc-1", timeout=5)


def test_discovery_without_zookeeper_asks_the_manager() -> None:
    endpoint = {
        "id": 3, "model_name": "iris", "model_version": 2, "url": "http://127.0.0.1:9001",
        "cluster_id": "rc-1", "deployment_id": "dp-1", "health": "HEALTHY",
        "registered_at": NOW.isoformat(),
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/services/iris":
            return httpx.Response(200, json={"data": [endpoint], "count": 1})
        return httpx.Response(404, json={"detail": "no live endpoint serves 'wine'"})

    hook = _hook_over(handler)

    (found,) = hook.discover_endpoints("iris")
    assert (found.model_name, found.model_version, found.url) == ("iris", 2, endpoint["url"])
    assert hook.discover_endpoints("wine") == []
