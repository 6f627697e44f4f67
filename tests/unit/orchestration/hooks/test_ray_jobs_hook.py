"""RayJobHook (Ray's SDK, blocking) and RayJobAsyncHook (the REST API over httpx)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from rayline.jobs.client import JobClient
from rayline.orchestration.exceptions import RayJobApiError, RayJobNotFoundError
from rayline.orchestration.hooks.ray_jobs import RayJobAsyncHook, RayJobHook, RayJobState

ADDRESS = "http://127.0.0.1:8265"
SID = "af-dag-task-0123456789ab-t1"


# ------------------------------------------------------------------ sync hook
class FakeSdkClient:
    """What the hook uses of ray.job_submission.JobSubmissionClient."""

    def __init__(self, *, error: BaseException | None = None) -> None:
        self.error = error

    def get_job_info(self, job_id: str) -> Any:
        if self.error is not None:
            raise self.error
        return SimpleNamespace(
            status="FAILED",
            message="boom",
            error_type="JOB_ERROR",
            driver_exit_code=3,
            start_time=1_700_000_000_000,
            end_time=1_700_000_004_250,
        )

    def get_job_logs(self, job_id: str) -> str:
        if self.error is not None:
            raise self.error
        return "line\n"


def _sync_hook(client: FakeSdkClient) -> RayJobHook:
    hook = RayJobHook(ADDRESS)
    jobs = JobClient(ADDRESS)
    jobs._sdk = client  # type: ignore[assignment]
    hook._client = jobs
    return hook


def test_job_state_is_mapped_from_the_sdk() -> None:
    state = _sync_hook(FakeSdkClient()).get_job_state(SID)
    assert state == RayJobState(
        SID,
        "FAILED",
        "boom",
        "JOB_ERROR",
        3,
        start_time=1_700_000_000_000,
        end_time=1_700_000_004_250,
    )
    assert state.is_terminal and not state.succeeded
    assert state.seconds == 4.25


def test_unknown_job_is_none() -> None:
    missing = RuntimeError(f"Request failed with status code 404: Job {SID} does not exist.")
    assert _sync_hook(FakeSdkClient(error=missing)).get_job_state(SID) is None


@pytest.mark.parametrize(
    "error",
    [ConnectionError("refused"), RuntimeError("Request failed with status code 500: oops")],
)
def test_other_failures_are_job_api_errors(error: BaseException) -> None:
    hook = _sync_hook(FakeSdkClient(error=error))
    with pytest.raises(RayJobApiError):
        hook.get_job_state(SID)
    with pytest.raises(RayJobApiError):
        hook.get_job_logs(SID)


def test_address_comes_from_the_ray_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "ray_jobs", "host": "ray-head.test", "port": 8265}
    monkeypatch.setenv("AIRFLOW_CONN_RAY_DEFAULT", json.dumps(conn))
    assert RayJobHook().address == "http://ray-head.test:8265"
    assert RayJobHook("http://other:1/").address == "http://other:1"


def test_unreachable_cluster_is_a_job_api_error() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    with pytest.raises(RayJobApiError, match="cannot reach the Ray job API"):
        RayJobHook("http://127.0.0.1:9").get_conn()


# ------------------------------------------------------------------ async hook
def _run(handler: Any, call: Any) -> Any:
    hook = RayJobAsyncHook(ADDRESS, transport=httpx.MockTransport(handler))

    async def go() -> Any:
        async with hook.get_conn() as client:
            return await call(hook, client)

    return asyncio.run(go())


def test_async_job_state_reads_the_rest_api() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/api/jobs/{SID}"
        return httpx.Response(
            200, json={"status": "SUCCEEDED", "message": "done", "type": "SUBMISSION"}
        )

    state = _run(handler, lambda hook, client: hook.get_job_state(client, SID))

    assert state == RayJobState(SID, "SUCCEEDED", "done")


def test_async_unknown_job_raises_not_found() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text=f"Job {SID} does not exist")

    with pytest.raises(RayJobNotFoundError, match=SID):
        _run(handler, lambda hook, client: hook.get_job_state(client, SID))


def test_async_logs_and_stop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/logs"):
            return httpx.Response(200, json={"logs": "a\nb\n"})
        assert request.method == "POST" and request.url.path.endswith("/stop")
        return httpx.Response(200, json={"stopped": True})

    assert _run(handler, lambda hook, client: hook.get_job_logs(client, SID)) == "a\nb\n"
    assert _run(handler, lambda hook, client: hook.stop_job(client, SID)) is True


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(500, text="internal"), "HTTP 500"),
        (httpx.Response(200, text="<html>"), "not JSON"),
        (httpx.Response(200, json=[1, 2]), "not an object"),
    ],
)
def test_async_bad_answers_are_job_api_errors(response: httpx.Response, match: str) -> None:
    with pytest.raises(RayJobApiError, match=match):
        _run(lambda request: response, lambda hook, client: hook.get_job_state(client, SID))


def test_async_transport_failure_is_a_job_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RayJobApiError, match="cannot reach"):
        _run(handler, lambda hook, client: hook.get_job_state(client, SID))
