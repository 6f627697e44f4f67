"""Airflow hooks for Ray's Job Submission API: a sync one for workers, an async one for triggers.

The sync hook is :class:`rayline.jobs.client.JobClient` (the client the CLI and
serving use too) behind an Airflow connection; the async hook speaks the same
REST API with httpx, since Ray's client blocks, parsing and authenticating the
way `rayline.jobs.client` does (`JobState.from_json`, `auth_headers`). Both send
the cluster's Ray token: the one given (from the Cluster Manager's
``/v1/clusters/{id}/credentials``), else the password of the Airflow connection.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from airflow.sdk import BaseHook

from rayline.clusters.ray_auth import auth_headers
from rayline.jobs.client import TERMINAL_STATUSES, JobApiError, JobClient, JobState
from rayline.orchestration.exceptions import RayJobApiError, RayJobNotFoundError

__all__ = ["TERMINAL_STATUSES", "RayJobAsyncHook", "RayJobHook", "RayJobState"]

#: What the job API says about one job (the job contract's `JobState`).
RayJobState = JobState


class _RayJobConnectionMixin:
    """Resolve the job API address: given directly, else from the Airflow connection."""

    default_conn_name = "ray_default"
    ray_conn_id: str
    _address: str | None
    _auth_token: str | None

    def _resolve_token(self) -> str | None:
        """The token given, else the connection's password (only when the address is its)."""
        if self._auth_token or self._address:
            return self._auth_token
        return BaseHook.get_connection(self.ray_conn_id).password or None

    def _resolve_address(self) -> str:
        if self._address:
            return self._address.rstrip("/")
        connection = BaseHook.get_connection(self.ray_conn_id)
        host = connection.host or ""
        if not host:
            raise RayJobApiError(
                f"the Airflow connection {self.ray_conn_id!r} has no host; set it to the Ray "
                "dashboard's address (e.g. 127.0.0.1, port 8265) or pass job_api_url"
            )
        if "://" in host:
            return host.rstrip("/")
        url = f"{connection.schema or 'http'}://{host}"
        return f"{url}:{connection.port}" if connection.port else url


class RayJobHook(_RayJobConnectionMixin, BaseHook):
    """Submit, inspect, stop and read the logs of jobs on one Ray cluster (blocking calls).

    Built on :class:`rayline.jobs.client.JobClient` (Ray's ``JobSubmissionClient``,
    which also uploads a local ``working_dir`` or ``py_modules`` on submit).

    :param address: the job API (dashboard) URL, e.g. ``http://127.0.0.1:8265``,
        typically the ``job_api_url`` a cluster operator pushed to XCom. When
        None, the ``ray_conn_id`` connection's host/port/schema is used.
    :param ray_conn_id: the Airflow connection of a long-lived Ray cluster.
    :param ray_address: the cluster's GCS address, for the jobs' own-cluster
        addressing (default: the job API URL).
    :param auth_token: the cluster's Ray token (secret; never templated or logged).
    """

    conn_name_attr = "ray_conn_id"
    default_conn_name = "ray_default"
    conn_type = "ray_jobs"
    hook_name = "Ray Job Submission API"

    def __init__(
        self,
        address: str | None = None,
        *,
        ray_conn_id: str = default_conn_name,
        ray_address: str | None = None,
        auth_token: str | None = None,
    ) -> None:
        super().__init__()
        self._address = address
        self.ray_conn_id = ray_conn_id
        self.ray_address = ray_address
        self._auth_token = auth_token
        self._client: JobClient | None = None

    @property
    def address(self) -> str:
        """The job API URL this hook talks to."""
        return self._resolve_address()

    def get_conn(self) -> JobClient:
        """Return the job client of the cluster (checks that the API answers)."""
        if self._client is None:
            client = JobClient(
                self.address, ray_address=self.ray_address, auth_token=self._resolve_token()
            )
            try:
                client.sdk  # noqa: B018  # connect now: the error names the address
            except JobApiError as exc:
                raise RayJobApiError(str(exc)) from exc
            self._client = client
        return self._client

    def test_connection(self) -> tuple[bool, str]:
        """Check that the job API answers; returns ``(ok, message)``."""
        try:
            self.get_conn().sdk.list_jobs()
        except (RayJobApiError, OSError, RuntimeError) as exc:
            return False, str(exc)
        return True, f"Ray job API at {self.address} answered"

    def submit_job(
        self,
        *,
        submission_id: str,
        entrypoint: str,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        entrypoint_num_cpus: float | None = None,
        entrypoint_resources: dict[str, float] | None = None,
    ) -> str:
        """Submit a job under ``submission_id``; returns the id.

        Raises:
            RayJobApiError: the cluster refused the job (e.g. the id is taken) or
                did not answer.
        """
        try:
            return self.get_conn().submit_entrypoint(
                entrypoint=entrypoint,
                submission_id=submission_id,
                runtime_env=runtime_env,
                metadata=metadata,
                entrypoint_num_cpus=entrypoint_num_cpus,
                entrypoint_resources=entrypoint_resources,
            )
        except JobApiError as exc:
            raise RayJobApiError(str(exc)) from exc

    def get_job_state(self, submission_id: str) -> JobState | None:
        """Return the job's state, or None when the cluster knows no such job.

        Raises:
            RayJobApiError: the job API did not answer.
        """
        try:
            return self.get_conn().state(submission_id)
        except JobApiError as exc:
            raise RayJobApiError(str(exc)) from exc

    def get_job_logs(self, submission_id: str) -> str:
        """Return everything the job's driver printed so far.

        Raises:
            RayJobApiError: the job API did not answer or knows no such job.
        """
        try:
            return self.get_conn().logs(submission_id)
        except JobApiError as exc:
            raise RayJobApiError(str(exc)) from exc

    def stop_job(self, submission_id: str) -> bool:
        """Ask Ray to stop the job; returns False when it had already ended."""
        try:
            return self.get_conn().stop(submission_id)
        except JobApiError as exc:
            raise RayJobApiError(str(exc)) from exc


class RayJobAsyncHook(_RayJobConnectionMixin, BaseHook):
    """Poll jobs on one Ray cluster without blocking an event loop (for triggers).

    Ray's `JobSubmissionClient` is blocking, so this hook speaks the job REST API
    directly with ``httpx.AsyncClient``: ``GET /api/jobs/{id}``,
    ``GET /api/jobs/{id}/logs`` and ``POST /api/jobs/{id}/stop``.

    :param address: the job API (dashboard) URL.
    :param ray_conn_id: the Airflow connection used when ``address`` is None.
    :param timeout: seconds to wait for one answer.
    :param transport: an httpx async transport (tests pass ``httpx.MockTransport``).
    :param auth_token: the cluster's Ray token (secret; never templated or logged).
    """

    conn_name_attr = "ray_conn_id"
    default_conn_name = "ray_default"
    conn_type = "ray_jobs"
    hook_name = "Ray Job Submission API (async)"

    def __init__(
        self,
        address: str | None = None,
        *,
        ray_conn_id: str = default_conn_name,
        timeout: float = 10,
        transport: httpx.AsyncBaseTransport | None = None,
        auth_token: str | None = None,
    ) -> None:
        super().__init__()
        self._address = address
        self.ray_conn_id = ray_conn_id
        self.timeout = timeout
        self._transport = transport
        self._auth_token = auth_token

    def get_conn(self) -> httpx.AsyncClient:
        """Return a new async HTTP client for the job API; close it (``async with``) after use."""
        return httpx.AsyncClient(
            base_url=self._resolve_address(),
            timeout=self.timeout,
            transport=self._transport,
            headers={"Accept": "application/json", **auth_headers(self._resolve_token())},
        )

    async def get_job_state(self, client: httpx.AsyncClient, submission_id: str) -> JobState:
        """Return the job's state.

        Raises:
            RayJobNotFoundError: the cluster knows no such job.
            RayJobApiError: the job API did not answer or answered an error.
        """
        response = await self._get(client, f"/api/jobs/{quote(submission_id, safe='')}")
        if response.status_code == 404:
            raise RayJobNotFoundError(submission_id, str(client.base_url))
        body = _json_object(response, what=f"job {submission_id}")
        return JobState.from_json(submission_id, body)

    async def get_job_logs(self, client: httpx.AsyncClient, submission_id: str) -> str:
        """Return everything the job's driver printed so far.

        Raises:
            RayJobApiError: the job API did not answer, or knows no such job.
        """
        response = await self._get(client, f"/api/jobs/{quote(submission_id, safe='')}/logs")
        logs = _json_object(response, what=f"logs of job {submission_id}").get("logs", "")
        return logs if isinstance(logs, str) else str(logs)

    async def stop_job(self, client: httpx.AsyncClient, submission_id: str) -> bool:
        """Ask Ray to stop the job; returns False when it had already ended."""
        try:
            response = await client.post(f"/api/jobs/{quote(submission_id, safe='')}/stop")
        except httpx.TransportError as exc:
            raise RayJobApiError(
                f"cannot reach the Ray job API at {client.base_url}: {exc}"
            ) from exc
        body = _json_object(response, what=f"stop of job {submission_id}")
        return bool(body.get("stopped", False))

    async def _get(self, client: httpx.AsyncClient, path: str) -> httpx.Response:
        try:
            return await client.get(path)
        except httpx.TransportError as exc:
            raise RayJobApiError(
                f"cannot reach the Ray job API at {client.base_url}: {type(exc).__name__}: {exc}"
            ) from exc


def _json_object(response: httpx.Response, *, what: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer, else a `RayJobApiError` naming the problem."""
    if not response.is_success:
        raise RayJobApiError(
            f"the Ray job API answered HTTP {response.status_code} for {what}: "
            f"{response.text[:500]}"
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise RayJobApiError(
            f"the Ray job API answered something that is not JSON for {what}; is "
            f"{response.request.url} a Ray dashboard?"
        ) from exc
    if not isinstance(body, dict):
        raise RayJobApiError(f"the Ray job API answered {body!r} for {what}, not an object")
    return body
