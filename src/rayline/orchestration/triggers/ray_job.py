"""A trigger that follows one Ray job until it ends, without blocking the triggerer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from rayline.orchestration.exceptions import RayJobApiError, RayJobNotFoundError
from rayline.orchestration.hooks.cluster_manager import ClusterManagerHook
from rayline.orchestration.hooks.ray_jobs import RayJobAsyncHook, RayJobState

__all__ = ["RayJobTrigger"]


class RayJobTrigger(BaseTrigger):
    """Poll a Ray job's status until it is terminal, then fire one event.

    The event is ``{"status": "success" | "error", "message": ..., "submission_id": ...,
    "job_api_url": ..., "job_status": <Ray status or None>, "exit_code": <the
    entrypoint's, or None>, "log_offset": <characters of the log already written>}``.
    Failures (the job failed, the job API stayed unreachable for
    ``unreachable_timeout`` seconds, the job is unknown) are error events, never
    exceptions, so the operator decides what to raise.

    :param job_api_url: the cluster's job API (dashboard) URL.
    :param submission_id: the job to follow.
    :param poll_interval: seconds between two status requests.
    :param stream_logs: write the job's new log lines to this trigger's log (shown
        in the task log) on every poll.
    :param log_offset: characters of the job's log already written elsewhere.
    :param unreachable_timeout: seconds the job API may stay unreachable (a head
        restarting) before the trigger gives up with an error event.
    :param cluster_id: the Rayline cluster of the job API: its Ray token is asked
        from the Cluster Manager when the trigger runs (so it is never serialised).
    :param rayline_conn_id: the Cluster Manager's Airflow connection.
    """

    def __init__(
        self,
        *,
        job_api_url: str,
        submission_id: str,
        poll_interval: float = 5.0,
        stream_logs: bool = True,
        log_offset: int = 0,
        unreachable_timeout: float = 60.0,
        cluster_id: str | None = None,
        rayline_conn_id: str = "rayline_default",
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job_api_url = job_api_url
        self.submission_id = submission_id
        self.poll_interval = poll_interval
        self.stream_logs = stream_logs
        self.log_offset = log_offset
        self.unreachable_timeout = unreachable_timeout
        self.cluster_id = cluster_id
        self.rayline_conn_id = rayline_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Serialize RayJobTrigger arguments and classpath."""
        return (
            "rayline.orchestration.triggers.ray_job.RayJobTrigger",
            {
                "job_api_url": self.job_api_url,
                "submission_id": self.submission_id,
                "poll_interval": self.poll_interval,
                "stream_logs": self.stream_logs,
                "log_offset": self.log_offset,
                "unreachable_timeout": self.unreachable_timeout,
                "cluster_id": self.cluster_id,
                "rayline_conn_id": self.rayline_conn_id,
            },
        )

    async def _get_async_hook(self) -> RayJobAsyncHook:
        token = None
        if self.cluster_id is not None:
            manager = await ClusterManagerHook(self.rayline_conn_id).aget_conn()
            try:
                credentials = await asyncio.to_thread(manager.cluster_credentials, self.cluster_id)
            finally:
                manager.close()
            token = credentials.ray_auth_token
        return RayJobAsyncHook(self.job_api_url, auth_token=token)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the job until it ends; yield one success or error event."""
        hook = await self._get_async_hook()
        offset = self.log_offset
        loop = asyncio.get_running_loop()
        unreachable_since: float | None = None
        async with hook.get_conn() as client:
            while True:
                try:
                    state = await hook.get_job_state(client, self.submission_id)
                except RayJobNotFoundError as exc:
                    yield self._event("error", str(exc), None, offset)
                    return
                except RayJobApiError as exc:
                    now = loop.time()
                    unreachable_since = unreachable_since or now
                    if now - unreachable_since >= self.unreachable_timeout:
                        message = f"{exc} (for {now - unreachable_since:.0f} s; giving up)"
                        yield self._event("error", message, None, offset)
                        return
                    self.log.warning("Ray job %s: %s; retrying", self.submission_id, exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                unreachable_since = None
                if self.stream_logs:
                    offset = await self._write_new_lines(
                        hook, client, offset, final=state.is_terminal
                    )
                if state.is_terminal:
                    yield self._final_event(state, offset)
                    return
                self.log.debug("Ray job %s is %s", self.submission_id, state.status)
                await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """Stop the Ray job when a user kills the deferred task."""
        hook = await self._get_async_hook()
        async with hook.get_conn() as client:
            stopped = await hook.stop_job(client, self.submission_id)
        self.log.info("Stop of Ray job %s requested (was running: %s)", self.submission_id, stopped)

    async def _write_new_lines(
        self, hook: RayJobAsyncHook, client: httpx.AsyncClient, offset: int, *, final: bool
    ) -> int:
        """Write the log lines that appeared since ``offset``; return the new offset."""
        try:
            logs = await hook.get_job_logs(client, self.submission_id)
        except RayJobApiError as exc:
            self.log.warning("Cannot read the logs of Ray job %s yet: %s", self.submission_id, exc)
            return offset
        # Hold back a partial last line until it is complete (or the job ended).
        end = len(logs) if final else logs.rfind("\n", offset) + 1
        for line in logs[offset:end].splitlines():
            self.log.info("[ray job] %s", line)
        return max(offset, end)

    def _final_event(self, state: RayJobState, offset: int) -> TriggerEvent:
        if state.succeeded:
            return self._event(
                "success", state.message or "job succeeded", state.status, offset, exit_code=0
            )
        message = state.message or f"job ended {state.status}"
        if state.driver_exit_code is not None:
            message += f" (exit code {state.driver_exit_code})"
        return self._event("error", message, state.status, offset, exit_code=state.driver_exit_code)

    def _event(
        self,
        status: str,
        message: str,
        job_status: str | None,
        offset: int,
        *,
        exit_code: int | None = None,
    ) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "status": status,
                "message": message,
                "submission_id": self.submission_id,
                "job_api_url": self.job_api_url,
                "job_status": job_status,
                "exit_code": exit_code,
                "log_offset": offset,
            }
        )
