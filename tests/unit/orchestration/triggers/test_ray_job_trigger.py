"""RayJobTrigger: exact serialisation, and run() driven against a fake job API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from airflow.triggers.base import TriggerEvent

from rayline.clusters.schemas import ClusterCredentials
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.hooks.ray_jobs import RayJobAsyncHook
from rayline.orchestration.triggers.ray_job import RayJobTrigger

ADDRESS = "http://127.0.0.1:8265"
SID = "af-dag-train-0123456789ab-t1"


class FakeJobApi:
    """Answers GET /api/jobs/{id} with the next status, /logs with what was printed so far."""

    def __init__(self, statuses: list[dict[str, Any]], logs: list[str]) -> None:
        self.statuses: Iterator[dict[str, Any]] = iter(statuses)
        self.logs = iter(logs)
        self.last_logs = ""
        self.stopped = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/api/jobs/{SID}":
            return httpx.Response(200, json=next(self.statuses))
        if request.url.path == f"/api/jobs/{SID}/logs":
            self.last_logs = next(self.logs, self.last_logs)
            return httpx.Response(200, json={"logs": self.last_logs})
        if request.url.path == f"/api/jobs/{SID}/stop":
            self.stopped = True
            return httpx.Response(200, json={"stopped": True})
        return httpx.Response(404)


def _trigger(monkeypatch: pytest.MonkeyPatch, api: Any, **kwargs: Any) -> RayJobTrigger:
    trigger = RayJobTrigger(job_api_url=ADDRESS, submission_id=SID, poll_interval=0, **kwargs)
    transport = httpx.MockTransport(api)

    async def hook() -> RayJobAsyncHook:
        return RayJobAsyncHook(ADDRESS, transport=transport)

    monkeypatch.setattr(trigger, "_get_async_hook", hook)
    return trigger


async def _events(trigger: RayJobTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


def test_serialization() -> None:
    trigger = RayJobTrigger(job_api_url=ADDRESS, submission_id=SID)
    classpath, kwargs = trigger.serialize()
    assert classpath == "rayline.orchestration.triggers.ray_job.RayJobTrigger"
    assert kwargs == {
        "job_api_url": ADDRESS,
        "submission_id": SID,
        "poll_interval": 5.0,
        "stream_logs": True,
        "log_offset": 0,
        "unreachable_timeout": 60.0,
        "cluster_id": None,
        "rayline_conn_id": "rayline_default",
    }
    # The triggerer rebuilds the trigger from exactly this.
    assert RayJobTrigger(**kwargs).serialize() == (classpath, kwargs)


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    debug = warning = info


def test_success_yields_one_event_and_streams_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeJobApi(
        statuses=[
            {"status": "PENDING"},
            {"status": "RUNNING"},
            {"status": "SUCCEEDED", "message": "ok"},
        ],
        logs=["", "epoch 1\nepo", "epoch 1\nepoch 2\nRAYLINE_RESULT {}\n"],
    )
    log = RecordingLog()
    monkeypatch.setattr(RayJobTrigger, "log", log)

    events = asyncio.run(_events(_trigger(monkeypatch, api)))

    total = len("epoch 1\nepoch 2\nRAYLINE_RESULT {}\n")
    assert events == [
        TriggerEvent(
            {
                "status": "success",
                "message": "ok",
                "submission_id": SID,
                "job_api_url": ADDRESS,
                "job_status": "SUCCEEDED",
                "exit_code": 0,
                "log_offset": total,
            }
        )
    ]
    lines = [line for line in log.lines if line.startswith("[ray job]")]
    assert lines == ["[ray job] epoch 1", "[ray job] epoch 2", "[ray job] RAYLINE_RESULT {}"]


def test_failed_job_is_an_error_event_with_rays_message(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeJobApi(
        statuses=[
            {"status": "RUNNING"},
            {"status": "FAILED", "message": "Job entrypoint command failed", "driver_exit_code": 2},
        ],
        logs=["", "Traceback ...\nValueError: no rows\n"],
    )

    (event,) = asyncio.run(_events(_trigger(monkeypatch, api, stream_logs=False)))

    assert event.payload["status"] == "error"
    assert event.payload["job_status"] == "FAILED"
    assert event.payload["message"] == "Job entrypoint command failed (exit code 2)"
    assert event.payload["exit_code"] == 2
    assert event.payload["log_offset"] == 0  # nothing written: the operator writes it all


def test_log_offset_skips_what_was_already_written(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeJobApi(statuses=[{"status": "STOPPED"}], logs=["old\nnew\n"])

    (event,) = asyncio.run(_events(_trigger(monkeypatch, api, log_offset=4)))

    assert event.payload["status"] == "error"
    assert event.payload["log_offset"] == len("old\nnew\n")


def test_unknown_job_is_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    (event,) = asyncio.run(
        _events(_trigger(monkeypatch, lambda request: httpx.Response(404, text="no such job")))
    )
    assert event.payload["status"] == "error"
    assert SID in event.payload["message"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections to it are refused


def test_unreachable_job_api_is_an_error_event_after_the_grace_period() -> None:
    address = f"http://127.0.0.1:{_closed_port()}"
    trigger = RayJobTrigger(
        job_api_url=address, submission_id=SID, poll_interval=0.01, unreachable_timeout=0.05
    )

    (event,) = asyncio.run(_events(trigger))

    assert event.payload["status"] == "error"
    assert event.payload["job_status"] is None
    assert "cannot reach the Ray job API" in event.payload["message"]
    assert "giving up" in event.payload["message"]


def test_a_short_outage_is_ridden_out(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([None, None, {"status": "SUCCEEDED"}])

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/logs"):
            return httpx.Response(200, json={"logs": ""})
        answer = next(answers)
        if answer is None:
            raise httpx.ConnectError("head restarting", request=request)
        return httpx.Response(200, json=answer)

    (event,) = asyncio.run(_events(_trigger(monkeypatch, api, unreachable_timeout=60)))

    assert event.payload["status"] == "success"


def test_on_kill_stops_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeJobApi(statuses=[], logs=[])
    asyncio.run(_trigger(monkeypatch, api).on_kill())
    assert api.stopped


def test_the_clusters_token_is_asked_from_the_manager_at_run_time_never_serialised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "f" * 64

    class FakeManager:
        closed = False

        def cluster_credentials(self, cluster_id: str) -> ClusterCredentials:
            assert cluster_id == "c-1"
            return ClusterCredentials(cluster_id=cluster_id, ray_auth_token=token)

        def close(self) -> None:
            FakeManager.closed = True

    async def aget_conn(self: ClusterManagerHook) -> FakeManager:
        assert self.rayline_conn_id == "my_manager"
        return FakeManager()

    monkeypatch.setattr(ClusterManagerHook, "aget_conn", aget_conn)
    trigger = RayJobTrigger(
        job_api_url=ADDRESS, submission_id=SID, cluster_id="c-1", rayline_conn_id="my_manager"
    )
    assert token not in repr(trigger.serialize())
    hook = asyncio.run(trigger._get_async_hook())
    assert FakeManager.closed

    async def status() -> str:
        seen: list[str | None] = []

        def api(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers.get("Authorization"))
            return httpx.Response(200, json={"status": "RUNNING"})

        hook._transport = httpx.MockTransport(api)
        async with hook.get_conn() as client:
            state = await hook.get_job_state(client, SID)
        assert seen == [f"Bearer {token}"]
        return state.status

    assert asyncio.run(status()) == "RUNNING"
