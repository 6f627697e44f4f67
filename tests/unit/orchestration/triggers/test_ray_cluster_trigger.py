"""RayClusterStateTrigger: exact serialisation, and run() against a fake Cluster Manager."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from airflow.triggers.base import TriggerEvent

from rayline.clusters.client import ClusterManagerClient
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.triggers.ray_cluster import RayClusterStateTrigger
from tests.unit.orchestration.fakes import NOW


def _cluster(state: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "rc-1",
        "name": "c",
        "purpose": "training",
        "state": state,
        "reason": reason,
        "backend": "local",
        "worker_count": 0,
        "ttl_seconds": 60,
        "job_api_url": "http://127.0.0.1:8265" if state == "READY" else None,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }


def _trigger(
    monkeypatch: pytest.MonkeyPatch, handler: Any, **kwargs: Any
) -> RayClusterStateTrigger:
    trigger = RayClusterStateTrigger(cluster_id="rc-1", poll_interval=0, **kwargs)
    hook = ClusterManagerHook()
    hook._client = ClusterManagerClient(
        "http://cm.test", token="t", transport=httpx.MockTransport(handler), max_retries=0
    )
    monkeypatch.setattr(trigger, "_get_hook", lambda: hook)
    return trigger


def _run(trigger: RayClusterStateTrigger) -> list[TriggerEvent]:
    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def test_serialization() -> None:
    trigger = RayClusterStateTrigger(cluster_id="rc-1", deadline=123.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "rayline.orchestration.triggers.ray_cluster.RayClusterStateTrigger"
    assert kwargs == {
        "cluster_id": "rc-1",
        "target_state": "READY",
        "rayline_conn_id": "rayline_default",
        "poll_interval": 5.0,
        "deadline": 123.0,
    }


def test_ready_cluster_is_a_success_event_carrying_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    states = iter(["PENDING", "PROVISIONING", "READY"])
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json=_cluster(next(states)))

    (event,) = _run(_trigger(monkeypatch, answer))

    assert event.payload["status"] == "success"
    assert event.payload["cluster"]["job_api_url"] == "http://127.0.0.1:8265"
    # One look, then the manager's long-poll: READY is seen the moment it happens.
    assert seen == ["GET /v1/clusters/rc-1", *["POST /v1/clusters/rc-1/wait"] * 2]


def test_failed_cluster_is_an_error_event_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = _cluster("FAILED", reason="head died")
    (event,) = _run(_trigger(monkeypatch, lambda r: httpx.Response(200, json=answer)))

    assert event.payload["status"] == "error"
    assert "FAILED" in event.payload["message"] and "head died" in event.payload["message"]


def test_waiting_for_terminated_through_terminating(monkeypatch: pytest.MonkeyPatch) -> None:
    states = iter(["TERMINATING", "TERMINATED"])
    trigger = _trigger(
        monkeypatch,
        lambda r: httpx.Response(200, json=_cluster(next(states))),
        target_state="TERMINATED",
    )
    (event,) = _run(trigger)
    assert event.payload["status"] == "success"


def test_deadline_gives_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    trigger = _trigger(
        monkeypatch, lambda r: httpx.Response(200, json=_cluster("PROVISIONING")), deadline=0.0
    )
    (event,) = _run(trigger)
    assert event.payload["status"] == "error"
    assert "still PROVISIONING" in event.payload["message"]


def test_unreachable_manager_gives_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    (event,) = _run(_trigger(monkeypatch, handler))
    assert event.payload["status"] == "error"
    assert "cannot reach the Cluster Manager" in event.payload["message"]
