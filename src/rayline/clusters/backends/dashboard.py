"""Ask a Ray head's dashboard how the cluster is doing, over its HTTP API.

Shared by every backend: wherever Ray runs, the head's dashboard answers the same
endpoints. Endpoints used (Ray 2.60):

* ``GET /api/gcs_healthz``: "success" when the dashboard reaches a live GCS.
* ``GET /api/v0/nodes``: the State API's node list (what ``ray list nodes`` and
  ``ray.util.state.list_nodes`` read), a public API, unlike the dashboard UI's
  ``/nodes?view=summary``.
* ``GET /api/version``: the Job Submission API's own liveness endpoint, the one
  ``JobSubmissionClient`` checks when it connects.
* ``GET /api/jobs/`` and ``GET /api/serve/applications/`` for activity.
"""

from __future__ import annotations

from typing import Any

import httpx

from rayline.clusters.backends.base import NodeStatus
from rayline.clusters.backends.errors import BackendUnavailableError
from rayline.clusters.ray_auth import auth_headers

__all__ = ["DashboardClient"]

_ACTIVE_JOB_STATES = {"RUNNING": "running", "PENDING": "pending"}
_MAX_NODES = 10_000


class DashboardClient:
    """A short-lived client of one dashboard; use it as a context manager.

    Args:
        base_url: the dashboard's URL.
        timeout: seconds to wait for one answer.
        token: the cluster's Ray auth token, sent with every request.
    """

    def __init__(self, base_url: str, *, timeout: float = 3.0, token: str | None = None) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, trust_env=False, headers=auth_headers(token)
        )

    def __enter__(self) -> DashboardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def gcs_healthy(self) -> tuple[bool, str]:
        """Whether the GCS is healthy, and why not."""
        try:
            response = self._http.get("/api/gcs_healthz")
        except httpx.HTTPError as exc:
            return False, f"dashboard not answering ({_describe(exc)})"
        if response.status_code == 200 and response.text.strip() == "success":
            return True, ""
        return False, f"GCS health check answered {response.status_code} {response.reason_phrase}"

    def job_api_ok(self) -> tuple[bool, str]:
        """Whether the Job Submission API answers, and why not."""
        try:
            response = self._http.get("/api/version")
        except httpx.HTTPError as exc:
            return False, f"job API not answering ({_describe(exc)})"
        if response.status_code == 200:
            return True, ""
        return False, f"job API answered {response.status_code} {response.reason_phrase}"

    def nodes(self) -> list[NodeStatus]:
        """Every node the GCS knows, alive or dead.

        Raises:
            BackendUnavailableError: the State API did not answer usefully.
        """
        body = self._json("/api/v0/nodes", params={"limit": _MAX_NODES, "detail": "false"})
        try:
            rows = body["data"]["result"]["result"]
        except (KeyError, TypeError) as exc:
            raise BackendUnavailableError(f"unexpected State API answer: {body!r:.200}") from exc
        return [
            NodeStatus(
                node_id=row.get("node_id"),
                role="head" if row.get("is_head_node") else "worker",
                alive=row.get("state") == "ALIVE",
                resources=row.get("resources_total") or {},
            )
            for row in rows
        ]

    def job_counts(self) -> dict[str, int]:
        """Running and pending Ray jobs (submitted jobs and plain drivers).

        Raises:
            BackendUnavailableError: the job API did not answer.
        """
        jobs = self._json("/api/jobs/")
        if not isinstance(jobs, list):
            raise BackendUnavailableError(f"GET /api/jobs/: expected a list, got {jobs!r:.200}")
        counts = {"running": 0, "pending": 0}
        for job in jobs:
            key = _ACTIVE_JOB_STATES.get(str(job.get("status")))
            if key is not None:
                counts[key] += 1
        return counts

    def serve_app_count(self) -> int:
        """Serve applications deployed; 0 when Serve (or its endpoint) does not answer."""
        try:
            body = self._json("/api/serve/applications/")
        except BackendUnavailableError:
            return 0
        apps = body.get("applications") if isinstance(body, dict) else None
        return len(apps) if isinstance(apps, dict) else 0

    def _json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.get(path, params=params)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"GET {path}: {_describe(exc)}") from exc
        except ValueError as exc:  # the body was not JSON
            raise BackendUnavailableError(f"GET {path}: answer is not JSON") from exc


def _describe(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
